// The model's logits against an independent float64 reference written here from the papers' formulas
// (DeepSeek-V2/V3 MLA and DeepSeekMoE, Llama/Qwen2 GQA): scalar loops over tokens, heads and experts,
// weights looked up by their Hugging Face names. This pins every block and every tensor name at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "policy_test_models.h"

using namespace grpo;
using torch::Tensor;

namespace {

constexpr double kPi = 3.14159265358979323846;

struct Reference {
  const ModelConfig& c;
  std::map<std::string, Tensor> w;

  Reference(CausalLM& model, const ModelConfig& config) : c(config) {
    for (const auto& p : model->named_parameters()) w[p.key()] = p.value().detach().to(torch::kDouble);
    for (const auto& p : model->named_buffers()) w[p.key()] = p.value().detach().to(torch::kDouble);
  }
  const Tensor& W(const std::string& name) {
    auto it = w.find(name);
    REQUIRE_MESSAGE(it != w.end(), "model has no tensor " << name);
    return it->second;
  }
  Tensor linear(const std::string& name, const Tensor& x) {
    Tensor y = torch::mv(W(name + ".weight"), x);
    if (w.count(name + ".bias")) y = y + W(name + ".bias");
    return y;
  }
  Tensor rmsnorm(const std::string& name, const Tensor& x) {
    return x / std::sqrt((x * x).mean().item<double>() + c.rms_norm_eps) * W(name + ".weight");
  }
  Tensor swiglu(const std::string& prefix, const Tensor& x) {
    Tensor g = linear(prefix + ".gate_proj", x);
    return linear(prefix + ".down_proj", g / (1 + torch::exp(-g)) * linear(prefix + ".up_proj", x));
  }

  // Inverse frequency of pair i, written from the YaRN and Llama-3 papers' definitions.
  double inv_freq(int64_t i, int64_t dim) {
    const RopeConfig& r = c.rope;
    double base = 1.0 / std::pow(r.theta, 2.0 * i / dim);
    if (r.scaling == RopeScaling::Yarn) {
      auto corr = [&](double rot) {
        return dim * std::log(r.original_max_position_embeddings / (rot * 2 * kPi)) / (2 * std::log(r.theta));
      };
      double lo = std::max(std::floor(corr(r.beta_fast)), 0.0), hi = std::min(std::ceil(corr(r.beta_slow)), dim - 1.0);
      if (lo == hi) hi += 0.001;
      double ramp = std::clamp((i - lo) / (hi - lo), 0.0, 1.0);  // 0: keep, 1: interpolate
      return base / r.factor * ramp + base * (1 - ramp);
    }
    if (r.scaling == RopeScaling::Llama3) {
      double wavelen = 2 * kPi / base, old = r.original_max_position_embeddings;
      if (wavelen < old / r.high_freq_factor) return base;
      if (wavelen > old / r.low_freq_factor) return base / r.factor;
      double s = (old / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      return (1 - s) * base / r.factor + s * base;
    }
    return base;
  }
  double rope_factor() {
    const RopeConfig& r = c.rope;
    if (r.scaling != RopeScaling::Yarn) return 1.0;
    auto m = [&](double s) { return 0.1 * s * std::log(r.factor) + 1; };
    return m(r.mscale) / m(r.mscale_all_dim);
  }
  Tensor rope(const Tensor& x, int64_t pos) {
    const int64_t d = x.size(0);
    std::vector<double> out(d);
    auto v = x.contiguous();
    const double* in = v.data_ptr<double>();
    for (int64_t i = 0; i < d / 2; ++i) {
      double angle = pos * inv_freq(i, d), cs = std::cos(angle) * rope_factor(), sn = std::sin(angle) * rope_factor();
      int64_t a = c.rope.layout == RopeLayout::Interleaved ? 2 * i : i;
      int64_t b = c.rope.layout == RopeLayout::Interleaved ? 2 * i + 1 : i + d / 2;
      out[a] = in[a] * cs - in[b] * sn;
      out[b] = in[b] * cs + in[a] * sn;
    }
    return torch::tensor(out, torch::kDouble);
  }

  // softmax over visible positions, weighted sum of values.
  Tensor attend(const Tensor& q, const std::vector<Tensor>& keys, const std::vector<Tensor>& values, double scale) {
    std::vector<double> s;
    for (const Tensor& k : keys) s.push_back(torch::dot(q, k).item<double>() * scale);
    double mx = *std::max_element(s.begin(), s.end()), z = 0;
    for (double& e : s) z += (e = std::exp(e - mx));
    Tensor out = torch::zeros_like(values[0]);
    for (size_t j = 0; j < s.size(); ++j) out = out + values[j] * (s[j] / z);
    return out;
  }

  std::vector<Tensor> attention(int64_t l, const std::vector<Tensor>& xs) {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn";
    const int64_t heads = c.num_attention_heads;
    std::vector<std::vector<Tensor>> q(xs.size()), k(xs.size()), v(xs.size());
    for (size_t t = 0; t < xs.size(); ++t) {
      if (c.uses_mla()) {
        const MlaConfig& m = c.mla;
        Tensor qall = m.q_lora_rank > 0 ? linear(p + ".q_b_proj", rmsnorm(p + ".q_a_layernorm", linear(p + ".q_a_proj", xs[t])))
                                        : linear(p + ".q_proj", xs[t]);
        Tensor kv = linear(p + ".kv_a_proj_with_mqa", xs[t]);
        Tensor latent = rmsnorm(p + ".kv_a_layernorm", kv.narrow(0, 0, m.kv_lora_rank));
        Tensor k_pe = rope(kv.narrow(0, m.kv_lora_rank, m.qk_rope_head_dim), t);
        Tensor kvb = linear(p + ".kv_b_proj", latent);
        const int64_t qd = m.qk_nope_head_dim + m.qk_rope_head_dim, kvd = m.qk_nope_head_dim + m.v_head_dim;
        for (int64_t h = 0; h < heads; ++h) {
          Tensor qh = qall.narrow(0, h * qd, qd);
          q[t].push_back(torch::cat({qh.narrow(0, 0, m.qk_nope_head_dim), rope(qh.narrow(0, m.qk_nope_head_dim, m.qk_rope_head_dim), t)}));
          k[t].push_back(torch::cat({kvb.narrow(0, h * kvd, m.qk_nope_head_dim), k_pe}));
          v[t].push_back(kvb.narrow(0, h * kvd + m.qk_nope_head_dim, m.v_head_dim));
        }
      } else {
        const int64_t d = c.head_dim, group = heads / c.num_key_value_heads;
        Tensor qa = linear(p + ".q_proj", xs[t]), ka = linear(p + ".k_proj", xs[t]), va = linear(p + ".v_proj", xs[t]);
        for (int64_t h = 0; h < heads; ++h) {
          q[t].push_back(rope(qa.narrow(0, h * d, d), t));
          k[t].push_back(rope(ka.narrow(0, (h / group) * d, d), t));
          v[t].push_back(va.narrow(0, (h / group) * d, d));
        }
      }
    }
    std::vector<Tensor> out;
    for (size_t t = 0; t < xs.size(); ++t) {
      std::vector<Tensor> heads_out;
      for (int64_t h = 0; h < heads; ++h) {
        std::vector<Tensor> keys, values;
        for (size_t s = 0; s <= t; ++s) {
          keys.push_back(k[s][h]);
          values.push_back(v[s][h]);
        }
        heads_out.push_back(attend(q[t][h], keys, values, c.attention_scale()));
      }
      out.push_back(linear(p + ".o_proj", torch::cat(heads_out)));
    }
    return out;
  }

  Tensor moe(int64_t l, const Tensor& x) {
    const std::string p = "model.layers." + std::to_string(l) + ".mlp";
    const MoeConfig& m = c.moe;
    const int64_t e_count = m.n_routed_experts;
    Tensor logits = torch::mv(W(p + ".gate.weight"), x);
    std::vector<double> s(e_count), sel(e_count);
    double z = 0;
    for (int64_t e = 0; e < e_count; ++e) z += std::exp(logits[e].item<double>());
    for (int64_t e = 0; e < e_count; ++e) {
      double lg = logits[e].item<double>();
      s[e] = m.scoring == MoeScoring::Sigmoid ? 1 / (1 + std::exp(-lg)) : std::exp(lg) / z;
      sel[e] = s[e] + (w.count(p + ".gate.e_score_correction_bias") ? W(p + ".gate.e_score_correction_bias")[e].item<double>() : 0.0);
    }
    std::vector<bool> allowed(e_count, true);
    if (m.topk_method != MoeTopkMethod::Greedy && m.n_group > 1) {
      const int64_t per = e_count / m.n_group;
      std::vector<std::pair<double, int64_t>> groups;
      for (int64_t g = 0; g < m.n_group; ++g) {
        std::vector<double> members(sel.begin() + g * per, sel.begin() + (g + 1) * per);
        std::sort(members.rbegin(), members.rend());
        groups.push_back({m.topk_method == MoeTopkMethod::NoauxTc ? members[0] + members[1] : members[0], g});
      }
      std::sort(groups.rbegin(), groups.rend());
      std::fill(allowed.begin(), allowed.end(), false);
      for (int64_t i = 0; i < m.topk_group; ++i)
        for (int64_t e = 0; e < per; ++e) allowed[groups[i].second * per + e] = true;
    }
    std::vector<int64_t> order;
    for (int64_t e = 0; e < e_count; ++e)
      if (allowed[e]) order.push_back(e);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sel[a] > sel[b]; });
    order.resize(m.num_experts_per_tok);
    double total = 0;
    for (int64_t e : order) total += s[e];
    Tensor y = m.n_shared_experts > 0 ? swiglu(p + ".shared_experts", x) : torch::zeros_like(x);
    for (int64_t e : order) {
      double weight = (m.norm_topk_prob ? s[e] / total : s[e]) * m.routed_scaling_factor;
      y = y + swiglu(p + ".experts." + std::to_string(e), x) * weight;
    }
    return y;
  }

  Tensor logits(const std::vector<int64_t>& ids) {
    std::vector<Tensor> h;
    for (int64_t id : ids) h.push_back(W("model.embed_tokens.weight")[id]);
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l);
      std::vector<Tensor> normed;
      for (const Tensor& x : h) normed.push_back(rmsnorm(p + ".input_layernorm", x));
      std::vector<Tensor> a = attention(l, normed);
      for (size_t t = 0; t < h.size(); ++t) {
        h[t] = h[t] + a[t];
        Tensor n = rmsnorm(p + ".post_attention_layernorm", h[t]);
        h[t] = h[t] + (c.is_moe_layer(l) ? moe(l, n) : swiglu(p + ".mlp", n));
      }
    }
    const Tensor& head = c.tie_word_embeddings ? W("model.embed_tokens.weight") : W("lm_head.weight");
    std::vector<Tensor> rows;
    for (const Tensor& x : h) rows.push_back(torch::mv(head, rmsnorm("model.norm", x)));
    return torch::stack(rows);
  }
};

}  // namespace

TEST_CASE("logits equal an independent float64 reference for every family") {
  const std::vector<int64_t> ids = {3, 17, 42, 5, 60, 0, 9, 33};
  for (const char* json : test::kAllTinyConfigs) {
    CausalLM model = test::tiny_model(json, /*seed=*/11, torch::kDouble);
    CAPTURE(model->config().model_type);
    Reference ref(model, model->config());
    Tensor expected = ref.logits(ids);
    ModelInputs in;
    in.input_ids = torch::tensor(ids, torch::kLong).unsqueeze(0);
    Tensor got = model->forward(in).squeeze(0);
    CHECK(test::max_relative_error(got, expected) < 1e-10);
  }
}

TEST_CASE("YaRN attention scale matches the published DeepSeek values") {
  // V3: m = 0.1·ln(40) + 1, scale = 192^-0.5 · m² = 0.135234; V2-Lite (mscale_all_dim 0.707): 0.114721.
  std::string v3 = R"({"model_type":"deepseek_v3","vocab_size":8,"hidden_size":8,"intermediate_size":8,
    "num_hidden_layers":1,"num_attention_heads":1,"kv_lora_rank":4,"qk_nope_head_dim":128,"qk_rope_head_dim":64,
    "v_head_dim":128,"rope_scaling":{"type":"yarn","factor":40,"original_max_position_embeddings":4096,
    "mscale":1.0,"mscale_all_dim":1.0}})";
  CHECK(parse_model_config(v3, "v3").attention_scale() == doctest::Approx(0.135234).epsilon(1e-5));
  std::string lite = v3;
  lite.replace(lite.find("\"mscale\":1.0,\"mscale_all_dim\":1.0"), 32, "\"mscale\":0.707,\"mscale_all_dim\":0.707");
  CHECK(parse_model_config(lite, "lite").attention_scale() == doctest::Approx(0.114721).epsilon(1e-5));
}

TEST_CASE("YaRN frequencies for d_r = 64 keep dims 0..10 and divide dims 23..31 by the factor") {
  RopeConfig r;
  r.scaling = RopeScaling::Yarn;
  r.factor = 40;
  r.original_max_position_embeddings = 4096;
  Tensor f = rope_inverse_frequencies(r, 64);
  for (int64_t i = 0; i < 32; ++i) {
    double base = 1.0 / std::pow(10000.0, 2.0 * i / 64);
    CAPTURE(i);
    if (i <= 10) CHECK(f[i].item<double>() == doctest::Approx(base));
    if (i >= 23) CHECK(f[i].item<double>() == doctest::Approx(base / 40));
    if (i > 10 && i < 23) {
      CHECK(f[i].item<double>() < base);
      CHECK(f[i].item<double>() > base / 40);
    }
  }
}
