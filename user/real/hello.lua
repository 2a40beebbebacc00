-- /data/hello.lua: run by /bin/lua (Debian's Lua 5.4). Prints a few lines and checks
-- every result, so a wrong answer ends the script with an error (exit status 1).
-- Exit status 0: everything computed as expected.

print("hello from " .. _VERSION)

-- Primes below 10000 (a sieve in a table of 10000 booleans): there are 1229.
local n, composite, count = 10000, {}, 0
for i = 2, n - 1 do
  if not composite[i] then
    count = count + 1
    for j = i * i, n - 1, i do composite[j] = true end
  end
end
assert(count == 1229, "primes below 10000: " .. count)

-- Integers are 64-bit; floats are doubles; string.format is C's.
assert(math.maxinteger == 0x7fffffffffffffff)
assert(2^53 + 1.0 == 2^53)
assert(string.format("%5.2f|%x|%q", math.pi, 255, "a\n") == " 3.14|ff|\"a\\\n\"")

-- Closures, coroutines, pattern matching, sorting.
local function counter()
  local c = 0
  return function() c = c + 1; return c end
end
local next_id = counter()
next_id(); next_id()
assert(next_id() == 3)

local gen = coroutine.wrap(function()
  local a, b = 0, 1
  while true do coroutine.yield(a); a, b = b, a + b end
end)
local fib = {}
for i = 1, 20 do fib[i] = gen() end
assert(fib[20] == 4181)

local words = {}
for w in ("the quick brown fox jumps over the lazy dog"):gmatch("%a+") do
  words[#words + 1] = w
end
table.sort(words)
assert(table.concat(words, " ") == "brown dog fox jumps lazy over quick the the")

-- Errors are values.
local ok, err = pcall(function() error({code = 7}) end)
assert(not ok and err.code == 7)

-- Memory: a few MiB of strings and tables, then the collector gives it back.
local big = {}
for i = 1, 100000 do big[i] = ("x"):rep(i % 64) .. i end
assert(#big == 100000 and big[100000] == ("x"):rep(32) .. "100000")
local before = collectgarbage("count")
big = nil
collectgarbage()
assert(collectgarbage("count") < before / 2)

-- Files: /data/hello.txt is "hello, pagoda\n".
local f = assert(io.open("/data/hello.txt", "r"))
local text = f:read("a")
f:close()
assert(text == "hello, pagoda\n", "hello.txt: " .. string.format("%q", text))

-- The operating system: time moves forward, the environment is readable.
assert(os.time() > 0)
assert(os.getenv("PAGODA_NO_SUCH_VARIABLE") == nil)

print(string.format("primes below %d: %d; fib(20) = %d; %s", n, count, fib[20], text:sub(1, -2)))
print("lua: all checks passed")
