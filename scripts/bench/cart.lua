-- wrk script for scripts/bench-spin.sh: one file, every scenario.
--
--   wrk -t2 -c16 -d10s --latency --timeout 30s -s scripts/bench/cart.lua URL -- SCENARIO RUN STORE
--
-- SCENARIO: hello | healthz | cart | summary | add | patch | hot
-- RUN:      a prefix that makes user ids unique per wrk invocation (warm-up vs measured run)
-- STORE:    the store id the script seeded (products p000..p099 and "hot")
--
-- Identity is the demo mode (`X-User-Id`). wrk gives each thread its own Lua state, so every
-- thread keeps its own request counter `n` and its own slice of users (thread id `id`, set in
-- setup). Consecutive requests of one thread go to different users, so the 8 connections of a
-- thread never work on the same cart at the same time (except the hot-product case, where they
-- share the product on purpose, and the read scenarios, where carts are only read).
--
-- done() prints one machine-readable line, `BENCH key=value ...`, that the shell script parses.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local scenario, run, store = "hello", "r", "bench"
local n = 0
statuses = {}   -- non-2xx status -> count, read back by done()

-- Users per thread for the add and patch scenarios (the script seeds PATCH_USERS per thread).
local ADD_USERS = 64
local PATCH_USERS = 32
local READERS = 16       -- reader carts r00..r15, three lines each, seeded by the script
local PRODUCTS = 100     -- p000..p099
local HOT_SHOPPERS = 8   -- per thread: 16 shoppers with two threads

function init(args)
  scenario = args[1] or scenario
  run = args[2] or run
  store = args[3] or store
end

local function hdr(user)
  return { ["X-User-Id"] = user, ["Content-Type"] = "application/json" }
end

function request()
  n = n + 1
  if scenario == "hello" then
    return wrk.format("GET", "/hello")
  elseif scenario == "healthz" then
    return wrk.format("GET", "/healthz")
  elseif scenario == "cart" or scenario == "summary" then
    local user = string.format("r%02d", (n + id * 7) % READERS)
    local path = "/v1/stores/" .. store .. "/cart"
    if scenario == "summary" then path = path .. "/summary" end
    return wrk.format("GET", path, { ["X-User-Id"] = user })
  elseif scenario == "add" then
    -- user k of this thread gets its r-th add as product (r + offset): new lines, spread
    -- over 100 products, each cart growing by one line per visit.
    local k = n % ADD_USERS
    local r = math.floor(n / ADD_USERS)
    local product = string.format("p%03d", (r + k * 3 + id * 50) % PRODUCTS)
    local user = string.format("add-%s-%d-%d", run, id, k)
    return wrk.format("POST", "/v1/stores/" .. store .. "/cart/items", hdr(user),
      '{"productId":"' .. product .. '","quantity":1}')
  elseif scenario == "patch" then
    -- seeded users patch-T-K each hold one line of product p0KK; every visit toggles 1 <-> 2.
    local k = n % PATCH_USERS
    local q = (math.floor(n / PATCH_USERS) % 2) + 1
    local user = string.format("patch-%d-%d", id, k)
    local product = string.format("p%03d", k)
    return wrk.format("PATCH", "/v1/stores/" .. store .. "/cart/items/" .. product, hdr(user),
      '{"quantity":' .. q .. '}')
  elseif scenario == "hot" then
    -- the flash sale: 16 shoppers (8 per thread), all adding the one product "hot".
    local user = string.format("hot-%s-%d-%d", run, id, n % HOT_SHOPPERS)
    return wrk.format("POST", "/v1/stores/" .. store .. "/cart/items", hdr(user),
      '{"productId":"hot","quantity":1}')
  end
  error("unknown scenario " .. tostring(scenario))
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local non2xx = 0
  local by_status = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for code, c in pairs(s) do
        by_status[code] = (by_status[code] or 0) + c
        non2xx = non2xx + c
      end
    end
  end
  local parts = {}
  for code, c in pairs(by_status) do table.insert(parts, code .. ":" .. c) end
  table.sort(parts)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f "
      .. "non2xx=%d socket_errors=%d timeouts=%d statuses=%s\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    non2xx, e.connect + e.read + e.write, e.timeout,
    (#parts > 0) and table.concat(parts, ",") or "-"))
end
