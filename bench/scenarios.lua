-- wrk script for the dirsync SCIM load scenarios; driven by bench/run.py (see bench/README.md).
--
--   wrk -t2 -c32 -d10s -s bench/scenarios.lua http://127.0.0.1:PORT/scim/v2 -- \
--       SCENARIO TOKEN N_USERS IDS_FILE RUN_ID
--
-- SCENARIO: s1 (POST /Users, unique userName), s1-tenants (s1 with TOKEN a comma-separated
-- list of tokens, one per tenant's directory, taken in turn request by request), s2 (GET filter userName eq on a random
-- seeded user), s3 (PATCH replace displayName + active on a random seeded user),
-- s4-offset (GET startIndex=K&count=100, random K), s4-cursor (GET cursor=&count=100, then
-- follow nextCursor). Seeded users are named bench-user-%07d, 0 <= k < N_USERS; IDS_FILE
-- holds their ids, one per line (read by s3 only).
--
-- The host API's scenarios take http://127.0.0.1:PORT/api/v1 as the URL and a JWT as
-- TOKEN: api-users (GET /users?limit=100, then follow next_cursor, one walk per free
-- connection slot, as s4-cursor), api-events (GET /events?after=K&limit=1000 at random K
-- with 0 <= K <= N_USERS - 1000; for this scenario N_USERS is the feed's last seq, so
-- every page is full). api-events counts the events it got (last seq minus first seq
-- plus one, read from each body's ends, no JSON parse) as "events" in BENCHJSON.
--
-- mix (the soak, `--suite soak`): S1 and S3 in turn, request by request; an optional
-- sixth argument DELAY_MS paces each connection (wrk's delay(): it waits that long after
-- each answer), so a run holds a steady rate below the peak.
--
-- done() prints one machine-readable line, `BENCHJSON {...}`, and `BENCHERR <first non-2xx>`.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local scenario, token, n_users, run_id, base
local ids = {}
local tokens = {}
local counter = 0
local cursors = {}
local headers = {}
non2xx = 0
first_err = ""
events_read = 0

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function init(args)
  scenario = args[1]
  token = args[2]
  n_users = tonumber(args[3]) or 1
  local ids_file = args[4]
  run_id = args[5] or tostring(os.time())
  base = wrk.path:gsub("/$", "")
  headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Accept"] = "application/scim+json",
    ["Content-Type"] = "application/scim+json",
  }
  if scenario:sub(1, 4) == "api-" then
    headers = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/json" }
  end
  if scenario == "s1-tenants" then
    for t in token:gmatch("[^,]+") do
      tokens[#tokens + 1] = t
    end
  end
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  local delay_ms = tonumber(args[6] or "")
  if delay_ms and delay_ms > 0 then
    -- Defined only when asked for: wrk paces every request of a script that has delay().
    function delay()
      return delay_ms
    end
  end
  if scenario == "s3" or scenario == "mix" then
    for line in io.lines(ids_file) do
      if #line > 0 then
        ids[#ids + 1] = line
      end
    end
    if #ids == 0 then
      error("no ids in " .. tostring(ids_file))
    end
  end
end

local function user_name(k)
  return string.format("bench-user-%07d", k)
end

function request()
  counter = counter + 1
  local kind = scenario
  if scenario == "mix" then
    kind = (counter % 2 == 0) and "s1" or "s3"
  end
  if kind == "s1" or kind == "s1-tenants" then
    local name = string.format("bench-s1-%s-%d-%d", run_id, tid or 0, counter)
    local body = string.format(
      '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"%s",'
        .. '"name":{"givenName":"Load","familyName":"Test %d"},"displayName":"Load Test %d",'
        .. '"emails":[{"value":"%s@bench.example","type":"work","primary":true}],"active":true}',
      name, counter, counter, name)
    if kind == "s1-tenants" then
      headers["Authorization"] = "Bearer " .. tokens[(counter % #tokens) + 1]
    end
    return wrk.format("POST", base .. "/Users", headers, body)
  elseif scenario == "s2" then
    local filter = 'userName eq "' .. user_name(math.random(0, n_users - 1)) .. '"'
    return wrk.format("GET", base .. "/Users?filter=" .. urlencode(filter), headers)
  elseif kind == "s3" then
    local id = ids[math.random(1, #ids)]
    local active = (math.random() < 0.5) and "true" or "false"
    local body = string.format(
      '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":['
        .. '{"op":"replace","path":"displayName","value":"Renamed %d-%d"},'
        .. '{"op":"replace","path":"active","value":%s}]}',
      tid or 0, counter, active)
    return wrk.format("PATCH", base .. "/Users/" .. id, headers, body)
  elseif scenario == "s4-offset" then
    local k = math.random(1, math.max(1, n_users - 99))
    return wrk.format("GET", base .. "/Users?startIndex=" .. k .. "&count=100", headers)
  elseif scenario == "s4-cursor" then
    -- One walk per free slot: continue a walk whose nextCursor we hold, or start a new one.
    local c = table.remove(cursors) or ""
    return wrk.format("GET", base .. "/Users?cursor=" .. urlencode(c) .. "&count=100", headers)
  elseif scenario == "api-users" then
    local c = table.remove(cursors)
    if c then
      return wrk.format("GET", base .. "/users?limit=100&after=" .. urlencode(c), headers)
    end
    return wrk.format("GET", base .. "/users?limit=100", headers)
  elseif scenario == "api-events" then
    local k = math.random(0, math.max(0, n_users - 1000))
    return wrk.format("GET", base .. "/events?limit=1000&after=" .. k, headers)
  end
  error("unknown scenario " .. tostring(scenario))
end

function response(status, hdrs, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_err == "" then
      first_err = tostring(status) .. " " .. string.sub(body or "", 1, 300):gsub("%s+", " ")
    end
    return
  end
  if scenario == "s4-cursor" and body then
    local nc = body:match('"nextCursor"%s*:%s*"([^"]+)"')
    if nc then
      table.insert(cursors, nc)
    end
  elseif scenario == "api-users" and body then
    -- next_cursor comes after the page's data: look for it from the end.
    local at = body:find('"next_cursor":"', math.max(1, #body - 400), true)
    if at then
      local nc = body:match('^"next_cursor":"([^"]+)"', at)
      if nc then
        table.insert(cursors, nc)
      end
    end
  elseif scenario == "api-events" and body then
    local first = tonumber(body:match('"seq":(%d+)'))
    local at = body:find('"next_after":', math.max(1, #body - 64), true)
    local last = at and tonumber(body:match('^"next_after":(%d+)', at))
    if first and last and last >= first then
      events_read = events_read + (last - first + 1)
    end
  end
end

function done(summary, latency, requests)
  local bad, err, events = 0, "", 0
  for _, t in ipairs(threads) do
    bad = bad + (tonumber(t:get("non2xx")) or 0)
    events = events + (tonumber(t:get("events_read")) or 0)
    local e = t:get("first_err")
    if err == "" and e and e ~= "" then
      err = e
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"timeout":%d,"status":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
      .. '"max_us":%d,"mean_us":%.1f,"events":%d}\n',
    summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, events))
  io.write("BENCHERR " .. err .. "\n")
end
