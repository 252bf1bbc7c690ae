-- wrk script: rotate pre-signed Fast.io deliveries and pace them to an offered rate.
--
--   wrk -t T -c C -d 10s -s signed_rate.lua http://127.0.0.1:PORT -- FILE RATE T PATH
--
-- FILE holds one request per line, "<hex signature>\t<body>"; thread k of T takes lines
-- k, k+T, k+2T, ... so no two threads send the same event_id. RATE is the offered req/s for
-- the whole run (0 = open throttle: every connection sends as soon as its last answer came).
--
-- Plain wrk has no rate limit, so each thread keeps a schedule of send slots spaced
-- T/RATE apart: wrk calls delay() before every request on every connection, and each call
-- claims the next free slot and waits until it. A thread that falls behind (all connections
-- busy) does not burst to catch up: it sends at its slot or as soon as a connection is free,
-- so the achieved rate is at most the offered one and the shortfall shows as a lower acked
-- rate. Latency is wrk's, measured from the moment a request is written, not from its slot.
-- done() prints one line "BENCH_RESULT {json}" that bench/wrk.py parses.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local now_ts = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_ts)
  return tonumber(now_ts.tv_sec) * 1e6 + tonumber(now_ts.tv_nsec) / 1e3
end

-- main state: remember the threads so done() can add up their counters
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- per-thread state; `wraps` is global so done() can read it with thread:get()
local requests = {}
local count, index = 0, 0
wraps = 0
local interval_us, next_slot_us = 0, 0

function init(args)
  local file, rate, nthreads, path = args[1], tonumber(args[2]), tonumber(args[3]), args[4]
  local line_no = 0
  for line in io.lines(file) do
    if line_no % nthreads == id then
      local tab = line:find("\t", 1, true)
      local headers = {
        ["Content-Type"] = "application/json",
        ["X-Fastio-Signature"] = line:sub(1, tab - 1),
      }
      count = count + 1
      requests[count] = wrk.format("POST", path, headers, line:sub(tab + 1))
    end
    line_no = line_no + 1
  end
  if rate > 0 then
    interval_us = 1e6 * nthreads / rate
  end
end

function request()
  index = index + 1
  if index > count then
    -- out of distinct deliveries: repeats are counted and reported, never hidden
    index, wraps = 1, wraps + 1
  end
  return requests[index]
end

function delay()
  if interval_us == 0 then
    return 0
  end
  local now = now_us()
  if next_slot_us < now then
    next_slot_us = now
  end
  local slot = next_slot_us
  next_slot_us = next_slot_us + interval_us
  return math.floor((slot - now) / 1000)
end

function done(summary, latency, _)
  local wrapped = 0
  for _, thread in ipairs(threads) do
    wrapped = wrapped + (thread:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us":%d,"requests":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p95":%d,"p99":%d,"p999":%d},'
      .. '"wraps":%d}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.9),
    wrapped
  ))
end
