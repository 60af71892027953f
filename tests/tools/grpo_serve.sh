# Sourced by the command-line tests that talk to `grpo serve` on loopback (tests/cli/serve_openai.sh,
# tests/cli/sample_endpoint.sh). Needs $grpo (the binary), $dir (the test's folder) and a `fail` function.

# start_grpo_serve ARGS...: `grpo serve --port 0 ARGS...` in the background, its output in
# $dir/server.out and $dir/server.log; sets server_pid, and port once the server printed the port the
# system gave it (at most 30 s; fails when the server exits first).
start_grpo_serve() {
  "$grpo" serve --port 0 "$@" > "$dir/server.out" 2> "$dir/server.log" &
  server_pid=$!
  port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/server.out")
    [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start"
    sleep 0.1
  done
  [ -n "$port" ] || fail "the server did not print its port"
}
