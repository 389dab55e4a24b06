-- Extend the leases of attempts that still hold their jobs (running, same lease token), and
-- write what each reported since its last heartbeat (fenced the same way).
-- KEYS: the bound queue keys, then one job key per attempt.
-- ARGV: lease_us, then per job: id, lease_token, progress ('' = unchanged; with one, note is
-- written too, '' clearing it), note, output (JSON text, '' = unchanged).
-- Returns the 1-based positions of the attempts that lost their job.
bind_keys('leases')
local now = now_us()
local expiry = now + tonumber(ARGV[1])
local expires_at, score = stamp(expiry), int(expiry)
local lost = {}
for i = 1, (#ARGV - 1) / 5 do
  local at = 5 * (i - 1) + 1
  local id, token, progress, note, output = ARGV[at + 1], ARGV[at + 2], ARGV[at + 3],
    ARGV[at + 4], ARGV[at + 5]
  local key = KEYS[NQ + i]
  if holds(load(key), token) then
    rcall('HSET', key, 'lease_expires_at', expires_at)
    rcall('ZADD', K.leases, score, id)
    if progress ~= '' then
      rcall('HSET', key, 'progress', progress)
      if note ~= '' then
        rcall('HSET', key, 'progress_note', note)
      else
        rcall('HDEL', key, 'progress_note')
      end
    end
    if output ~= '' then
      rcall('HSET', key, 'output', output)
    end
  else
    lost[#lost + 1] = i
  end
end
return lost
