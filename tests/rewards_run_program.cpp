// run_program: real programs in real bubblewrap sandboxes, well-behaved and hostile.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "rewards/process_sandbox.h"
#include "rewards/program_runner.h"
#include "rewards/rule_set.h"

using namespace grpo::rewards;

namespace {

ProgramRequest python(const std::string& source, std::vector<ProgramTest> tests, double time_limit = 5.0) {
  ProgramRequest request;
  request.language = "python";
  request.source = source;
  request.tests = std::move(tests);
  request.time_limit = time_limit;
  return request;
}

ProgramTest io(const std::string& input, const std::string& output) { return ProgramTest{input, output, ""}; }

// One stdin/stdout test expecting `output`; returns the verdict.
Verdict verdict_of(const std::string& source, const std::string& output, double time_limit = 5.0) {
  const ProgramResult result = run_program(python(source, {io("", output)}, time_limit));
  REQUIRE(result.verdicts.size() == 1);
  return result.verdicts[0];
}

// Live processes whose command line contains `marker` (forked children inherit it).
int processes_with(const std::string& marker) {
  int count = 0;
  DIR* proc = opendir("/proc");
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    // Processes exit while we look: plain reads that just fail then, no stream exceptions.
    FILE* file = std::fopen((std::string("/proc/") + entry->d_name + "/cmdline").c_str(), "rb");
    if (!file) continue;
    std::string cmdline(4096, '\0');
    cmdline.resize(std::fread(cmdline.data(), 1, cmdline.size(), file));
    std::fclose(file);
    if (cmdline.find(marker) != std::string::npos) ++count;
  }
  closedir(proc);
  return count;
}

}  // namespace

TEST_CASE("python programs pass, fail and are compared modulo trailing whitespace") {
  REQUIRE(sandbox_available());
  const std::string doubler = "n = int(input())\nprint(n * 2)\n";
  const ProgramResult result = run_program(python(doubler, {io("2\n", "4\n"), io("5", "10"), io("7\n", "15\n"),
                                                            io("1\n", "2   \n\n\n")}));
  CHECK(result.total == 4);
  CHECK(result.passed == 3);
  CHECK(result.verdicts[2] == Verdict::wrong_answer);
  CHECK(result.verdicts[3] == Verdict::passed);
  CHECK(verdict_of("print('a')\nprint('b')", "a\nb") == Verdict::passed);
  CHECK(verdict_of("print('a')", "a\nb") == Verdict::wrong_answer);  // missing lines are not ignored
  CHECK(verdict_of("raise SystemExit(3)", "") == Verdict::runtime_error);
}

TEST_CASE("assertion tests are appended to the source") {
  ProgramRequest request = python("def square(x):\n    return x * x\n",
                                  {ProgramTest{"", "", "assert square(3) == 9"},
                                   ProgramTest{"", "", "assert square(4) == 15"},
                                   ProgramTest{"", "", "assert square(-2) == 4"}});
  const ProgramResult result = run_program(request);
  CHECK(result.passed == 2);
  CHECK(result.verdicts[1] == Verdict::runtime_error);
}

TEST_CASE("C++ programs are compiled in the sandbox and compile errors fail every test") {
  ProgramRequest request;
  request.language = "cpp";
  request.source = "#include <iostream>\nint main() { long a, b; std::cin >> a >> b; std::cout << a + b << \"\\n\"; }\n";
  request.tests = {io("1 2", "3"), io("40 2", "42"), io("1 1", "3")};
  ProgramResult result = run_program(request);
  CHECK(result.passed == 2);
  CHECK(result.verdicts[2] == Verdict::wrong_answer);

  request.source = "int main() { return undefined_name; }";
  result = run_program(request);
  CHECK(result.passed == 0);
  CHECK(result.verdicts[0] == Verdict::compile_error);
  CHECK(result.compile_output.find("undefined_name") != std::string::npos);
}

TEST_CASE("hostile programs: loops and sleeps end at the time limit") {
  const auto start = std::chrono::steady_clock::now();
  CHECK(verdict_of("while True:\n    pass\n", "", 1.0) == Verdict::time_limit);
  CHECK(verdict_of("import time\ntime.sleep(100)\n", "", 1.0) == Verdict::time_limit);
  // Closing stdout does not escape the deadline.
  CHECK(verdict_of("import os, time\nos.close(1)\nos.close(2)\ntime.sleep(100)\n", "", 1.0) == Verdict::time_limit);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 30.0);  // a hang here would be the bug, not slowness
}

TEST_CASE("hostile programs: a fork bomb is contained and leaves nothing behind") {
  // Run directly so the command line carries a marker that every forked copy inherits.
  const std::string marker = "grpo_fork_bomb_" + std::to_string(getpid());
  const std::string bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n# " + marker;
  char directory[] = "/tmp/grpo-test-XXXXXX";
  REQUIRE(mkdtemp(directory) != nullptr);
  ProcessLimits limits;
  limits.wall_seconds = 1.0;
  const ProcessRun run = run_in_sandbox({"/usr/bin/python3", "-I", "-c", bomb}, "", directory, false, limits);
  CHECK_FALSE(run.succeeded());
  // The pid namespace dies with the sandbox; its teardown is asynchronous, so wait for it.
  int left = processes_with(marker);
  for (int i = 0; i < 250 && left > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    left = processes_with(marker);
  }
  CHECK(left == 0);
  rmdir(directory);
  CHECK(verdict_of("print('still works')", "still works") == Verdict::passed);
}

TEST_CASE("hostile programs: a 1 GB allocation fails, 1 GB of output is cut off") {
  CHECK(verdict_of("x = bytearray(1 << 30)\nprint('allocated')\n", "allocated") == Verdict::runtime_error);
  CHECK(verdict_of("import sys\nchunk = 'x' * 65536\nwhile True:\n    sys.stdout.write(chunk)\n", "", 10.0) ==
        Verdict::output_limit);
}

TEST_CASE("hostile programs: no files outside the sandbox, no writes outside /tmp") {
  const std::string reader =
      "import os\nresults = []\n"
      "for path in ['/etc/passwd', '/root/.bashrc', '/etc/hostname']:\n"
      "    try:\n        open(path).read()\n        results.append('read ' + path)\n"
      "    except OSError:\n        results.append('blocked')\n"
      "try:\n    os.listdir('/work')\n    results.append('listed')\n"
      "except OSError:\n    results.append('blocked')\n"
      "print(' '.join(results))\n";
  CHECK(verdict_of(reader, "blocked blocked blocked blocked") == Verdict::passed);

  const std::string host_marker = "/tmp/grpo_sandbox_escape_" + std::to_string(getpid());
  const std::string writer =
      "results = []\n"
      "for path in ['/usr/grpo_escape', '/grpo_escape', '/etc/grpo_escape', '/sandbox/grpo_escape']:\n"
      "    try:\n        open(path, 'w').write('x')\n        results.append('wrote ' + path)\n"
      "    except OSError:\n        results.append('blocked')\n"
      "open('" + host_marker + "', 'w').write('private')\n"
      "print(' '.join(results), open('" + host_marker + "').read())\n";
  CHECK(verdict_of(writer, "blocked blocked blocked blocked private") == Verdict::passed);
  CHECK(access(host_marker.c_str(), F_OK) != 0);  // the sandbox's /tmp was its own
  CHECK(access("/usr/grpo_escape", F_OK) != 0);
}

TEST_CASE("hostile programs: no network, not even the host's loopback") {
  // A listening socket on the host's 127.0.0.1: reachable from here, not from the sandbox.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(listener >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(listen(listener, 4) == 0);
  socklen_t size = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size);
  const int port = ntohs(address.sin_port);
  const std::string client =
      "import socket\n"
      "try:\n    socket.create_connection(('127.0.0.1', " + std::to_string(port) + "), timeout=2)\n"
      "    print('connected')\n"
      "except OSError:\n    print('blocked')\n";
  CHECK(verdict_of(client, "blocked") == Verdict::passed);
  close(listener);
}

TEST_CASE("bad requests are refused") {
  CHECK_THROWS_AS(run_program(python("print(1)", {})), std::invalid_argument);
  ProgramRequest request = python("print(1)", {io("", "1")});
  request.language = "ruby";
  CHECK_THROWS_AS(run_program(request), std::invalid_argument);
  request = python("print(1)", {io("", "1")}, 1000.0);
  CHECK_THROWS_AS(run_program(request), std::invalid_argument);
}

TEST_CASE("the code_tests rule runs the completion's program through verify.run_program") {
  RuleSet rules = RuleSet::from_source(
      "return {\n"
      "  { name = 'tests', seconds = 60, rule = require('code_tests'){ language = 'python' } },\n"
      "  { name = 'all', seconds = 60, rule = require('code_tests'){ binary = true } },\n"
      "}",
      "code_rules.lua");
  RuleScorer scorer(rules, SandboxLimits{});
  Sample sample;
  sample.completion =
      "Here:\n```python\nimport sys\ndef square(n):\n    return n * n\n"
      "data = sys.stdin.read().split()\nif data:\n    print(square(int(data[0])))\n```\nDone.";
  sample.record = {{"tests", {{{"input", "3"}, {"output", "9"}}, {{"input", "4"}, {"output", "16"}},
                              {{"input", "5"}, {"output", "26"}}, "assert square(6) == 36"}}};
  const SampleScore score = scorer.score(sample);
  INFO(score.rules[0].message);
  CHECK(score.rules[0].value == doctest::Approx(0.75));  // 3 of 4
  CHECK(score.rules[1].value == 0.0);
  sample.completion = "no code here";
  CHECK(scorer.score(sample).rules[0].value == 0.0);
}
