-- wrk script for bench/ingest.sh: every request is one fresh report (new report id), from an instance
-- drawn out of a pool of 100,000; about 80% are agent/call-home-sized bodies and 20% PMM-sized; a few
-- percent of reports carry the next version, so instances upgrade (and, being random, flap back) as in life.
local pool = tonumber(os.getenv("BENCH_INSTANCES") or "100000")
local fixtures = os.getenv("BENCH_FIXTURES") or "tests/fixtures"

local function read(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

-- Each body is cut once, at start-up, around the parts that vary; a request then only joins the
-- pieces. (Running gsub over a 7.8 kB PMM body four times per request made wrk, not the service, the
-- scarcest user of this 2-core machine's CPU.)
local function template(text, placeholders)
  local cuts = {}
  for name, literal in pairs(placeholders) do
    local first, last = text:find(literal, 1, true)
    assert(first, "placeholder not found: " .. literal)
    table.insert(cuts, { first = first, last = last, name = name })
  end
  table.sort(cuts, function(a, b) return a.first < b.first end)
  local pieces, names, position = {}, {}, 1
  for _, cut in ipairs(cuts) do
    table.insert(pieces, text:sub(position, cut.first - 1))
    table.insert(names, cut.name)
    position = cut.last + 1
  end
  table.insert(pieces, text:sub(position))
  return { pieces = pieces, names = names }
end

local function fill(compiled, values)
  local parts = {}
  for index, name in ipairs(compiled.names) do
    parts[#parts + 1] = compiled.pieces[index]
    parts[#parts + 1] = values[name]
  end
  parts[#parts + 1] = compiled.pieces[#compiled.pieces]
  return table.concat(parts)
end

local agent = template(read(fixtures .. "/telemetry-agent-ps.json"), {
  report_id = "244b3bd5-2e13-49ba-8316-8ed17f566af8",
  instance_id = "5bec3a39-0008-4cf1-ae91-44567ae27ed4",
  created = "2024-06-11T07:39:16Z",
  version = '"pillar_version","value":"8.0.36-28"',
})
local pmm = template(read(fixtures .. "/pmm-generic-report-1.json"), {
  report_id = "67114039-e393-4b26-a73d-75df892f513e",
  instance_id = "ca11b4b3-c378-49d3-85c5-2828f1e32f11",
  created = "2025-03-14T09:12:45.318461902Z",
  version = '"PMMServerVersion","value":"3.2.0"',
})

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_number", counter)
  table.insert(threads, thread)
end

local function uuid_from(a, b)
  return string.format("%08x-%04x-4%03x-8%03x-%012x",
    a % 0x100000000, math.floor(a / 0x100000000) % 0x10000, b % 0x1000,
    math.floor(b / 0x1000) % 0x1000, (a * 7919 + b) % 0x1000000000000)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_number)
  ok, other, sequence = 0, 0, 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sequence = sequence + 1
  local instance = math.random(1, pool)
  local minor = instance % 10
  if math.random() < 0.03 then minor = minor + 1 end
  local values = {
    report_id = uuid_from(math.random(0, 0x7fffffff) * 0x10000 + thread_number, sequence),
    instance_id = string.format("00000000-0000-4000-8000-%012x", instance),
    created = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  }
  local body
  if math.random() < 0.2 then
    values.version = '"PMMServerVersion","value":"3.' .. minor .. '.0"'
    body = fill(pmm, values)
  else
    values.version = '"pillar_version","value":"8.0.' .. (30 + minor) .. '"'
    body = fill(agent, values)
  end
  return wrk.format(nil, "/v1/telemetry/GenericReport", nil, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local total_ok, total_other = 0, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_other = total_other + thread:get("other")
  end
  io.write(string.format("WRK_RESULT ok=%d other=%d errors=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d\n",
    total_ok, total_other,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
