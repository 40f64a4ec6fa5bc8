-- wrk script: PATCH /api/sandboxes with a random key from a key file.
--
-- wrk -s bench/patch.lua URL -- KEY_FILE
--
-- Each line of KEY_FILE is "KEY" (act for the key's own account) or
-- "KEY ACCOUNT_ID" (act for ACCOUNT_ID). Every request sets a new snapshot
-- ID, so each one writes. At the end the script prints one line,
-- "BENCH_RESULT {json}", with the counts and latency percentiles in
-- microseconds. Statuses other than 200 are counted as errors; wrk itself
-- counts only statuses above 399.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local entries = {}
local sent = 0
non200 = 0
first_error = ""

function init(args)
   for line in io.lines(args[1]) do
      local key, account = line:match("^(%S+)%s*(%S*)$")
      if key then
         table.insert(entries, {key, account})
      end
   end
   if #entries == 0 then
      error("no keys in " .. args[1])
   end
   -- Each wrk thread has its own Lua state; seed each differently.
   math.randomseed(os.time() + tonumber(tostring(entries):match("0x(%x+)") or "0", 16))
end

function request()
   local entry = entries[math.random(#entries)]
   sent = sent + 1
   local body = '{"snapshotId":"snap_bench_' .. sent
      .. '","github_repo":"https://github.com/recoup/bench"'
   if entry[2] ~= "" then
      body = body .. ',"account_id":"' .. entry[2] .. '"'
   end
   body = body .. "}"
   return wrk.format("PATCH", "/api/sandboxes", {
      ["x-api-key"] = entry[1],
      ["Content-Type"] = "application/json",
      -- TLS ends at the proxy in production; with DEBUG=false the service
      -- redirects a request without this header to https.
      ["X-Forwarded-Proto"] = "https",
   }, body)
end

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      if first_error == "" then
         first_error = status .. " " .. string.sub(body or "", 1, 200)
      end
   end
end

local function json_string(text)
   return '"' .. text:gsub('[%c"\\]', function(c)
      return string.format("\\u%04x", string.byte(c))
   end) .. '"'
end

function done(summary, latency, requests)
   local errors, sample = 0, ""
   for _, thread in ipairs(threads) do
      errors = errors + thread:get("non200")
      local text = thread:get("first_error")
      if sample == "" and text ~= "" then
         sample = text
      end
   end
   local socket = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests":%d,"duration_us":%d,"non200":%d,'
         .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
         .. '"timeouts":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,'
         .. '"max_us":%d,"mean_us":%.1f,"first_error":%s}\n',
      summary.requests, summary.duration, errors,
      socket.connect, socket.read, socket.write, socket.timeout,
      latency:percentile(50), latency:percentile(95), latency:percentile(99),
      latency.max, latency.mean, json_string(sample)))
end
