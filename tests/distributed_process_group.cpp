// The data-parallel process group: launcher variables, and real two-rank Gloo groups on loopback
// (collectives checked against values computed here, a rank that exits, hangs or never arrives).
#include <doctest/doctest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "rl/distributed/distributed.h"
#include "distributed_test_ranks.h"

using namespace grpo;
using nlohmann::json;

namespace {

// Sets (or, with nullptr, unsets) environment variables for one scope, restoring them after.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::map<std::string, const char*> vars) {
    for (const char* name : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS",
                             "SLURM_LOCALID", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"})
      if (!vars.count(name)) vars[name] = nullptr;
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
      if (value) setenv(name.c_str(), value, 1); else unsetenv(name.c_str());
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_)
      if (value) setenv(name.c_str(), value->c_str(), 1); else unsetenv(name.c_str());
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string result_line(const std::string& output) {
  size_t at = output.find("RESULT ");
  if (at == std::string::npos) return "";
  return output.substr(at + 7, output.find('\n', at) - at - 7);
}

std::vector<double> values_of(const torch::Tensor& t) {
  torch::Tensor c = t.to(torch::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// Each rank r of two: doubles, tensors in several buckets, gradients (one parameter has a gradient on
// rank 1 only, one on no rank), variable-length gathers and a broadcast. Prints what it got.
const bool collectives_registered = test::rank_scenario("collectives", [] {
  DistributedOptions o = distributed_options_from_environment();
  o.timeout = std::chrono::seconds(20);
  o.bucket_bytes = 64;  // 16 floats: the tensors below span several buckets
  Distributed d(o);
  const double r = d.rank();
  json out;
  std::vector<double> s = {1 + r, -r}, mn = s, mx = s;
  d.all_reduce(s, Reduction::Sum);
  d.all_reduce(mn, Reduction::Min);
  d.all_reduce(mx, Reduction::Max);
  out["sum"] = s;
  out["min"] = mn;
  out["max"] = mx;

  torch::Tensor a = torch::arange(30, torch::kFloat).reshape({5, 6}) * (r + 1);
  torch::Tensor b = torch::full({7}, 10 * (r + 1));
  torch::Tensor c = torch::arange(12, torch::kFloat).reshape({3, 4}).t();  // not contiguous
  d.all_reduce({a, b, c});
  out["a"] = values_of(a);
  out["b"] = values_of(b);
  out["c"] = values_of(c);

  torch::Tensor p0 = torch::zeros({4}, torch::requires_grad()), p1 = torch::zeros({3}, torch::requires_grad()),
                p2 = torch::zeros({2}, torch::requires_grad());
  (p0 * torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}) * (r + 1)).sum().backward();
  if (d.rank() == 1) (p1 * 5).sum().backward();
  const bool ok = d.all_reduce_gradients({p0, p1, p2}, /*ok=*/d.rank() == 0);
  out["g0"] = values_of(p0.grad());
  out["g1"] = values_of(p1.grad());
  out["g2_defined"] = p2.grad().defined();
  out["ok"] = ok;
  out["ok_all"] = d.all_reduce_gradients({p0}, true);

  std::vector<double> mine(d.rank() + 1, 7 + r);  // rank 0: one value, rank 1: two
  out["gather"] = d.all_gather(mine);
  out["strings"] = d.all_gather(std::string(d.rank() == 0 ? "zero" : "rank one \xce\xbb"));
  torch::Tensor w = torch::full({2, 3}, 100 + r, torch::requires_grad());
  torch::Tensor v = torch::full({40}, r);
  d.broadcast_from_main({w, v});
  out["w"] = values_of(w);
  out["v_sum"] = v.sum().item<double>();
  d.barrier();
  std::cout << "RESULT " << out.dump() << std::endl;
});

// Rank 1 leaves right after joining; rank 0 then tries an all-reduce.
const bool exits_registered = test::rank_scenario("rank exits", [] {
  DistributedOptions o = distributed_options_from_environment();
  o.timeout = std::chrono::seconds(std::stoi(std::getenv("TEST_TIMEOUT_S")));
  Distributed d(o);
  if (d.rank() == 1) std::_Exit(3);
  std::vector<double> v = {1.0};
  d.all_reduce(v);
  std::cout << "RESULT {\"unexpected\": true}" << std::endl;
});

// Rank 1 joins, then stops answering (a stuck reward rule, a dead-locked rank).
const bool hangs_registered = test::rank_scenario("rank hangs", [] {
  DistributedOptions o = distributed_options_from_environment();
  o.timeout = std::chrono::seconds(std::stoi(std::getenv("TEST_TIMEOUT_S")));
  Distributed d(o);
  if (d.rank() == 1) std::this_thread::sleep_for(std::chrono::minutes(10));
  std::vector<double> v = {1.0};
  d.all_reduce(v);
  std::cout << "RESULT {\"unexpected\": true}" << std::endl;
});

}  // namespace

TEST_CASE("distributed: no launcher variables means one process, and collectives are the identity") {
  ScopedEnv env({});
  DistributedOptions o = distributed_options_from_environment();
  CHECK(o.world_size == 1);
  CHECK(o.rank == 0);
  Distributed d(o);
  CHECK(d.is_main());
  std::vector<double> v = {1.5, -2};
  d.all_reduce(v, Reduction::Max);
  CHECK(v == std::vector<double>{1.5, -2});
  CHECK(d.all_gather(v) == v);
  CHECK(d.all_gather(std::string("x")) == std::vector<std::string>{"x"});
  torch::Tensor p = torch::ones({2}, torch::requires_grad());
  (p * 3).sum().backward();
  CHECK_FALSE(d.all_reduce_gradients({p}, false));
  CHECK(p.grad()[0].item<float>() == 3.0f);
  d.barrier();
}

TEST_CASE("distributed: torchrun, Slurm and Open MPI variables name the rank and the world") {
  SUBCASE("torchrun") {
    ScopedEnv env({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29400"}});
    DistributedOptions o = distributed_options_from_environment();
    CHECK(o.rank == 3);
    CHECK(o.world_size == 8);
    CHECK(o.local_rank == 1);
    CHECK(o.master_addr == "node0");
    CHECK(o.master_port == 29400);
  }
  SUBCASE("Slurm") {
    ScopedEnv env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "6"}, {"SLURM_LOCALID", "2"}, {"MASTER_ADDR", "n1"}, {"MASTER_PORT", "1234"}});
    DistributedOptions o = distributed_options_from_environment();
    CHECK(o.rank == 5);
    CHECK(o.world_size == 6);
    CHECK(o.local_rank == 2);
  }
  SUBCASE("Open MPI") {
    ScopedEnv env({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                   {"MASTER_ADDR", "n1"}, {"MASTER_PORT", "1234"}});
    DistributedOptions o = distributed_options_from_environment();
    CHECK(o.rank == 1);
    CHECK(o.world_size == 4);
    CHECK(o.local_rank == 1);
  }
  SUBCASE("torchrun's variables win over Slurm's") {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "6"}, {"MASTER_ADDR", "a"},
                   {"MASTER_PORT", "1"}});
    DistributedOptions o = distributed_options_from_environment();
    CHECK(o.rank == 0);
    CHECK(o.world_size == 2);
  }
  SUBCASE("a world of one needs no master") {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
    CHECK(distributed_options_from_environment().world_size == 1);
  }
}

TEST_CASE("distributed: malformed launcher variables are errors naming the variable") {
  auto error_of = [](std::map<std::string, const char*> vars) {
    ScopedEnv env(std::move(vars));
    try {
      distributed_options_from_environment();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of({{"RANK", "0"}}).find("WORLD_SIZE is not") != std::string::npos);
  CHECK(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}).find("RANK=2 is not an integer in [0, 1]") !=
        std::string::npos);
  CHECK(error_of({{"RANK", "0"}, {"WORLD_SIZE", "two"}}).find("WORLD_SIZE=two") != std::string::npos);
  CHECK(error_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}}).find("needs MASTER_ADDR and MASTER_PORT") != std::string::npos);
  CHECK(error_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT=70000") !=
        std::string::npos);
  CHECK(error_of({{"SLURM_NTASKS", "2"}, {"MASTER_ADDR", "a"}, {"MASTER_PORT", "1"}}).find("no rank variable") != std::string::npos);
}

TEST_CASE("distributed: two ranks over Gloo reduce, gather and broadcast exactly") {
  std::vector<test::RankOutcome> ranks = test::run_ranks("collectives", 2, {0, 1}, {}, 60);
  for (int r = 0; r < 2; ++r) {
    INFO("rank " << r << " output:\n" << ranks[r].output);
    REQUIRE(ranks[r].exit_code == 0);
    json out = json::parse(result_line(ranks[r].output));
    CHECK(out["sum"] == json({3.0, -1.0}));  // (1 + 0) + (1 + 1), 0 + -1
    CHECK(out["min"] == json({1.0, -1.0}));
    CHECK(out["max"] == json({2.0, 0.0}));
    std::vector<double> a = out["a"], b = out["b"], c = out["c"];
    for (int i = 0; i < 30; ++i) CHECK(a[i] == 3.0 * i);  // i·1 + i·2
    for (double x : b) CHECK(x == 30.0);
    // c was the transpose of a 3x4 arange: element [i][j] = j·4 + i, twice.
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 3; ++j) CHECK(c[i * 3 + j] == 2.0 * (j * 4 + i));
    CHECK(out["g0"] == json({3.0, 6.0, 9.0, 12.0}));  // d/dp Σ p·k·(r+1), summed over r = 0, 1
    CHECK(out["g1"] == json({5.0, 5.0, 5.0}));        // rank 1's gradient only, rank 0 had none
    CHECK(out["g2_defined"] == false);                // no rank had one: stays undefined
    CHECK(out["ok"] == false);                        // rank 1 reported a failed backward
    CHECK(out["ok_all"] == true);
    CHECK(out["gather"] == json({7.0, 8.0, 8.0}));
    CHECK(out["strings"] == json({"zero", "rank one \xce\xbb"}));
    CHECK(out["w"] == json(std::vector<double>(6, 100.0)));  // rank 0's values everywhere
    CHECK(out["v_sum"] == 0.0);
  }
}

TEST_CASE("distributed: a rank that exits makes the other fail with a clear error, not hang") {
  std::vector<test::RankOutcome> ranks = test::run_ranks("rank exits", 2, {0, 1}, {{"TEST_TIMEOUT_S", "20"}}, 60);
  INFO("rank 0 output:\n" << ranks[0].output);
  CHECK(ranks[1].exit_code == 3);
  CHECK_FALSE(ranks[0].killed_at_deadline);
  CHECK(ranks[0].exit_code == 1);
  CHECK(ranks[0].output.find("distributed: all-reduce failed on rank 0 of 2: another rank exited") != std::string::npos);
  CHECK(ranks[0].output.find("unexpected") == std::string::npos);
}

TEST_CASE("distributed: a rank that hangs makes the other fail at the timeout") {
  std::vector<test::RankOutcome> ranks = test::run_ranks("rank hangs", 2, {0, 1}, {{"TEST_TIMEOUT_S", "3"}}, 60, /*wait_for_rank=*/0);
  INFO("rank 0 output:\n" << ranks[0].output);
  CHECK_FALSE(ranks[0].killed_at_deadline);
  CHECK(ranks[0].exit_code == 1);
  CHECK(ranks[0].output.find("distributed: all-reduce failed on rank 0 of 2") != std::string::npos);
  CHECK(ranks[0].output.find("3 s timeout") != std::string::npos);
  CHECK(ranks[0].seconds >= 3.0);  // it waited for the timeout, not less
}

TEST_CASE("distributed: a rank that never arrives fails the rendezvous at the timeout") {
  std::vector<test::RankOutcome> ranks = test::run_ranks("rank exits", 2, {0}, {{"TEST_TIMEOUT_S", "2"}}, 60);
  INFO("rank 0 output:\n" << ranks[0].output);
  CHECK_FALSE(ranks[0].killed_at_deadline);
  CHECK(ranks[0].exit_code == 1);
  CHECK(ranks[0].output.find("distributed: rank 0 of 2 could not") != std::string::npos);
  CHECK(ranks[0].output.find("within 2 s") != std::string::npos);
}
