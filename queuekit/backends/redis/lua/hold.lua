-- Claim no job of a key (ARGV[1]; '' = the whole queue) for ARGV[2] microseconds from now;
-- a hold ending later stays. A queue without limits is claimed as a limited one while a hold
-- lasts: 'lheld' (expiring with the last hold) says so.
-- KEYS: the bound queue keys.  Returns the end of the key's hold (epoch microseconds).
bind_keys('lk:held', 'limits', 'lheld', 'lbuild', 'kline:', 'kwait', 'kpark', 'kidle')
local key = ARGV[1]
local ends = now_us() + tonumber(ARGV[2])
local held = tonumber(rcall('HGET', K['lk:held'], key) or '0')
if ends <= held then
  return int(held)
end
rcall('HSET', K['lk:held'], key, int(ends))
if key ~= '' then
  rcall('ZADD', K.kidle, int(ends), key) -- its state may go once the hold is over
end
local was = limited()
if ends > tonumber(rcall('GET', K.lheld) or '0') then
  rcall('SET', K.lheld, int(ends))
  rcall('PEXPIREAT', K.lheld, int(math.ceil(ends / 1000)))
end
if not was then
  start_limiting()
end
return int(ends)
