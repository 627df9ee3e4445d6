-- tools/bench-kv.lua -- the wrk script of tools/bench-kv (run it through tools/bench-kv).
--
-- One script drives both systems, so the client work per request is the same.
-- Settings come from the environment (wrk gives script arguments only to the
-- running threads, not to setup() and done(), which run in another Lua state):
--
--   BKV_SYSTEM      chorus | etcd
--   BKV_MODE        write       PUT to a key never written before (no siblings)
--                   read        quorum/linearizable read of a populated key
--                   read-local  Chorus r=1 / etcd serializable range
--                   mixed       BKV_READ_PCT % reads, the rest writes
--   BKV_KEYS        populated key space for reads: k-0 .. k-(KEYS-1)
--   BKV_VALUE_SIZE  value bytes (the same bytes for every write of a thread)
--   BKV_R, BKV_W    Chorus r and w (default 2)
--   BKV_READ_PCT    reads in the mixed phase, 0..100
--   BKV_RUN         run id, part of written keys
--   BKV_NODES       host:port of every node; thread i talks to node i mod count
--   BKV_OUT         file done() writes its results to ("name value" lines; latencies
--                   in microseconds, as wrk's --latency report: its histogram includes
--                   wrk's coordinated-omission correction)

local system   = os.getenv("BKV_SYSTEM") or "chorus"
local mode     = os.getenv("BKV_MODE") or "write"
local nkeys    = tonumber(os.getenv("BKV_KEYS") or "10000")
local vsize    = tonumber(os.getenv("BKV_VALUE_SIZE") or "100")
local rq       = os.getenv("BKV_R") or "2"
local wq       = os.getenv("BKV_W") or "2"
local read_pct = tonumber(os.getenv("BKV_READ_PCT") or "90")
local run      = os.getenv("BKV_RUN") or "0"
local out      = os.getenv("BKV_OUT")

-- ---------------------------------------------------------------------------
-- base64 (etcd's JSON gateway carries keys and values as base64 bytes)

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64 = {}
for i = 1, 64 do b64[i - 1] = b64chars:sub(i, i) end

local function base64(s)
   local parts = {}
   local n = #s
   local i = 1
   while i <= n - 2 do
      local a, b, c = s:byte(i, i + 2)
      local v = a * 65536 + b * 256 + c
      parts[#parts + 1] = b64[math.floor(v / 262144) % 64] .. b64[math.floor(v / 4096) % 64]
                          .. b64[math.floor(v / 64) % 64] .. b64[v % 64]
      i = i + 3
   end
   local rest = n - i + 1
   if rest == 1 then
      local v = s:byte(i) * 65536
      parts[#parts + 1] = b64[math.floor(v / 262144) % 64] .. b64[math.floor(v / 4096) % 64] .. "=="
   elseif rest == 2 then
      local a, b = s:byte(i, i + 1)
      local v = a * 65536 + b * 256
      parts[#parts + 1] = b64[math.floor(v / 262144) % 64] .. b64[math.floor(v / 4096) % 64]
                          .. b64[math.floor(v / 64) % 64] .. "="
   end
   return table.concat(parts)
end

-- ---------------------------------------------------------------------------
-- setup and done run in the main Lua state

-- One wrk process drives all nodes: thread i (one connection each) talks to node
-- i mod #nodes (BKV_NODES = "host:port,host:port,..."), so one histogram holds
-- every request and wrk's own percentiles need no merging.
local threads = {}
local node_addrs = nil

function setup(thread)
   if node_addrs == nil then
      node_addrs = {}
      for hostport in string.gmatch(os.getenv("BKV_NODES") or "", "[^,]+") do
         local host, port = hostport:match("^(.*):(%d+)$")
         local addrs = wrk.lookup(host, port)
         node_addrs[#node_addrs + 1] = addrs[1]
      end
   end
   if #node_addrs > 0 then
      thread.addr = node_addrs[(#threads % #node_addrs) + 1]
   end
   thread:set("tid", #threads)
   thread:set("node", (#threads % math.max(1, #node_addrs)) + 1)
   table.insert(threads, thread)
end

-- ---------------------------------------------------------------------------
-- running threads

tid = 0
counter = 0
c2xx, c300, c404, c4xx, c5xx, cother = 0, 0, 0, 0, 0, 0
found, missing = 0, 0

local value, value_b64
local chorus_headers = { ["Content-Type"] = "application/octet-stream" }
local etcd_headers = { ["Content-Type"] = "application/json" }

function init(args)
   math.randomseed(os.time() + tid * 7919)
   local alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
   local chars = {}
   for i = 1, vsize do
      local k = math.random(1, #alphabet)
      chars[i] = alphabet:sub(k, k)
   end
   value = table.concat(chars)
   value_b64 = base64(value)
end

local function write_request()
   counter = counter + 1
   local key = "w-" .. run .. "-" .. tid .. "-" .. counter
   if system == "chorus" then
      return wrk.format("PUT", "/v1/kv/default/" .. key .. "?w=" .. wq, chorus_headers, value)
   end
   return wrk.format("POST", "/v3/kv/put", etcd_headers,
                     '{"key":"' .. base64(key) .. '","value":"' .. value_b64 .. '"}')
end

local function read_request(r, serializable)
   local key = "k-" .. math.random(0, nkeys - 1)
   if system == "chorus" then
      return wrk.format("GET", "/v1/kv/default/" .. key .. "?r=" .. r, nil, nil)
   end
   local body = '{"key":"' .. base64(key) .. '"'
   if serializable then body = body .. ',"serializable":true' end
   return wrk.format("POST", "/v3/kv/range", etcd_headers, body .. "}")
end

function request()
   if mode == "write" then
      return write_request()
   elseif mode == "read" then
      return read_request(rq, false)
   elseif mode == "read-local" then
      return read_request("1", true)
   else -- mixed
      if math.random() * 100 < read_pct then
         return read_request(rq, false)
      end
      return write_request()
   end
end

function response(status, headers, body)
   if status == 300 then
      c300 = c300 + 1
   elseif status == 404 then
      c404 = c404 + 1
   elseif status >= 200 and status < 300 then
      c2xx = c2xx + 1
   elseif status >= 400 and status < 500 then
      c4xx = c4xx + 1
   elseif status >= 500 then
      c5xx = c5xx + 1
   else
      cother = cother + 1
   end
   -- found / missing for reads: Chorus answers 404 for an absent key, etcd answers
   -- 200 with no "kvs" member.
   if mode == "read" or mode == "read-local" then
      if system == "chorus" then
         if status == 200 or status == 300 then found = found + 1 elseif status == 404 then missing = missing + 1 end
      elseif status == 200 then
         if body and body:find('"kvs"', 1, true) then found = found + 1 else missing = missing + 1 end
      end
   end
end

function done(summary, latency, requests)
   local f = out and io.open(out, "w") or io.stdout
   local function put(k, v) f:write(k, " ", string.format("%d", v), "\n") end
   put("requests", summary.requests)
   put("duration_us", summary.duration)
   put("err_connect", summary.errors.connect)
   put("err_read", summary.errors.read)
   put("err_write", summary.errors.write)
   put("err_status", summary.errors.status)
   put("err_timeout", summary.errors.timeout)
   local sums = { c2xx = 0, c300 = 0, c404 = 0, c4xx = 0, c5xx = 0, cother = 0, found = 0, missing = 0 }
   for _, t in ipairs(threads) do
      for k, _ in pairs(sums) do sums[k] = sums[k] + (t:get(k) or 0) end
   end
   for k, v in pairs(sums) do put(k, v) end
   put("lat_p50", latency:percentile(50))
   put("lat_p99", latency:percentile(99))
   put("lat_p999", latency:percentile(99.9))
   put("lat_p90", latency:percentile(90))
   put("lat_max", latency.max)
   put("lat_mean", latency.mean)
   if f ~= io.stdout then f:close() end
end
