#include "policy/model_config.h"

#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace grpo {
namespace {

using nlohmann::json;

// Reads keys of one JSON object, naming the object and file in every error.
class KeyReader {
 public:
  KeyReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }
  bool present(const char* key) const { return object_.contains(key); }  // even when null

  int64_t integer(const char* key) const {
    const json& v = required(key);
    if (!v.is_number_integer()) fail(key, "an integer", v);
    return v.get<int64_t>();
  }
  int64_t integer(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }

  double number(const char* key) const {
    const json& v = required(key);
    if (!v.is_number()) fail(key, "a number", v);
    return v.get<double>();
  }
  double number(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }

  bool boolean(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = object_.at(key);
    if (!v.is_boolean()) fail(key, "true or false", v);
    return v.get<bool>();
  }

  std::string string(const char* key) const {
    const json& v = required(key);
    if (!v.is_string()) fail(key, "a string", v);
    return v.get<std::string>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    return has(key) ? string(key) : fallback;
  }

  // An id field that transformers accepts as an int, a list of ints or null.
  std::vector<int64_t> ids(const char* key) const {
    if (!has(key)) return {};
    const json& v = object_.at(key);
    if (v.is_number_integer()) return {v.get<int64_t>()};
    if (v.is_array()) {
      std::vector<int64_t> out;
      for (const json& e : v) {
        if (!e.is_number_integer()) fail(key, "an integer or a list of integers", v);
        out.push_back(e.get<int64_t>());
      }
      return out;
    }
    fail(key, "an integer or a list of integers", v);
  }

  [[noreturn]] void fail(const char* key, const char* expected, const json& got) const {
    throw ConfigError(fmt::format("{}: key \"{}\" must be {}, got {}", where_, key, expected, got.dump()));
  }

 private:
  const json& required(const char* key) const {
    if (!has(key)) throw ConfigError(fmt::format("{}: missing required key \"{}\"", where_, key));
    return object_.at(key);
  }

  const json& object_;
  std::string where_;
};

RopeConfig parse_rope(const json& root, const KeyReader& top, const std::string& source, RopeLayout layout) {
  RopeConfig rope;
  rope.layout = layout;
  rope.theta = top.number("rope_theta", 10000.0);
  // transformers >= 5 writes "rope_parameters"; earlier versions "rope_scaling".
  const char* key = top.has("rope_parameters") ? "rope_parameters" : "rope_scaling";
  if (!top.has(key)) return rope;
  const json& scaling = root.at(key);
  if (!scaling.is_object()) top.fail(key, "an object", scaling);
  KeyReader r(scaling, fmt::format("{}: {}", source, key));
  rope.theta = r.number("rope_theta", rope.theta);
  std::string type = r.has("rope_type") ? r.string("rope_type") : r.string("type", "default");
  if (type == "default") return rope;
  rope.factor = r.number("factor");
  if (type == "linear") {
    rope.scaling = RopeScaling::Linear;
  } else if (type == "yarn") {
    rope.scaling = RopeScaling::Yarn;
    rope.original_max_position_embeddings = r.integer("original_max_position_embeddings");
    rope.beta_fast = r.number("beta_fast", 32.0);
    rope.beta_slow = r.number("beta_slow", 1.0);
    rope.mscale = r.number("mscale", 0.0);
    rope.mscale_all_dim = r.number("mscale_all_dim", 0.0);
  } else if (type == "llama3") {
    rope.scaling = RopeScaling::Llama3;
    rope.original_max_position_embeddings = r.integer("original_max_position_embeddings");
    rope.low_freq_factor = r.number("low_freq_factor");
    rope.high_freq_factor = r.number("high_freq_factor");
  } else {
    throw ConfigError(fmt::format("{}: {}.type \"{}\" is not supported (default, linear, yarn, llama3)",
                                  source, key, type));
  }
  return rope;
}

MoeTopkMethod parse_topk_method(const KeyReader& r, const std::string& fallback) {
  std::string method = r.string("topk_method", fallback);
  if (method == "greedy" || method == "gready") return MoeTopkMethod::Greedy;  // "gready": V2's own spelling
  if (method == "group_limited_greedy") return MoeTopkMethod::GroupLimitedGreedy;
  if (method == "noaux_tc") return MoeTopkMethod::NoauxTc;
  r.fail("topk_method", "one of greedy, group_limited_greedy, noaux_tc", method);
}

void parse_deepseek(const KeyReader& r, bool is_v3, ModelConfig& c) {
  // Defaults are those of transformers' DeepseekV3Config / DeepseekV2Config.
  // null means "no query compression" (V2-Lite); an absent key takes transformers' default of 1536.
  c.mla.q_lora_rank = r.has("q_lora_rank") ? r.integer("q_lora_rank") : r.present("q_lora_rank") ? 0 : 1536;
  c.mla.kv_lora_rank = r.integer("kv_lora_rank");
  c.mla.qk_nope_head_dim = r.integer("qk_nope_head_dim");
  c.mla.qk_rope_head_dim = r.integer("qk_rope_head_dim");
  c.mla.v_head_dim = r.integer("v_head_dim");
  c.num_key_value_heads = c.num_attention_heads;  // MLA has no GQA sharing
  c.head_dim = c.mla.qk_nope_head_dim + c.mla.qk_rope_head_dim;

  MoeConfig& m = c.moe;
  m.n_routed_experts = r.integer("n_routed_experts", 0);
  if (m.n_routed_experts > 0) {
    m.moe_intermediate_size = r.integer("moe_intermediate_size");
    m.num_experts_per_tok = r.integer("num_experts_per_tok");
  }
  m.n_shared_experts = r.integer("n_shared_experts", 0);
  m.n_group = r.integer("n_group", 1);
  m.topk_group = r.integer("topk_group", 1);
  m.topk_method = parse_topk_method(r, is_v3 ? "noaux_tc" : "greedy");
  std::string scoring = r.string("scoring_func", is_v3 ? "sigmoid" : "softmax");
  if (scoring == "sigmoid") {
    m.scoring = MoeScoring::Sigmoid;
  } else if (scoring == "softmax") {
    m.scoring = MoeScoring::Softmax;
  } else {
    r.fail("scoring_func", "\"sigmoid\" or \"softmax\"", scoring);
  }
  m.norm_topk_prob = r.boolean("norm_topk_prob", is_v3);
  m.routed_scaling_factor = r.number("routed_scaling_factor", 1.0);
  m.first_k_dense_replace = r.integer("first_k_dense_replace", 0);
  m.moe_layer_freq = r.integer("moe_layer_freq", 1);
  m.aux_loss_alpha = r.boolean("seq_aux", true) ? r.number("aux_loss_alpha", 0.0) : 0.0;
}

}  // namespace

bool ModelConfig::is_moe_layer(int64_t layer) const {
  return has_moe() && layer >= moe.first_k_dense_replace && layer % moe.moe_layer_freq == 0;
}

int64_t ModelConfig::qk_head_dim() const {
  return uses_mla() ? mla.qk_nope_head_dim + mla.qk_rope_head_dim : head_dim;
}

int64_t ModelConfig::rope_dim() const { return uses_mla() ? mla.qk_rope_head_dim : head_dim; }

double yarn_get_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

double ModelConfig::attention_scale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (uses_mla() && rope.scaling == RopeScaling::Yarn && rope.mscale_all_dim != 0.0) {
    double m = yarn_get_mscale(rope.factor, rope.mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

const char* to_string(ModelFamily family) {
  switch (family) {
    case ModelFamily::DeepSeek: return "deepseek";
    case ModelFamily::Qwen2: return "qwen2";
    case ModelFamily::Llama: return "llama";
  }
  return "?";
}

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw ConfigError(fmt::format("{}: not valid JSON: {}", source, e.what()));
  }
  if (!root.is_object()) throw ConfigError(fmt::format("{}: expected a JSON object at the top level", source));
  KeyReader r(root, source);

  ModelConfig c;
  c.model_type = r.string("model_type");
  RopeLayout layout = RopeLayout::RotateHalf;
  if (c.model_type == "deepseek_v3" || c.model_type == "deepseek_v2") {
    c.family = ModelFamily::DeepSeek;
    layout = r.boolean("rope_interleave", true) ? RopeLayout::Interleaved : RopeLayout::RotateHalf;
  } else if (c.model_type == "qwen2") {
    c.family = ModelFamily::Qwen2;
  } else if (c.model_type == "llama") {
    c.family = ModelFamily::Llama;
  } else {
    throw ConfigError(fmt::format("{}: model_type \"{}\" is not supported (deepseek_v3, deepseek_v2, qwen2, llama)",
                                  source, c.model_type));
  }

  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads);
  c.head_dim = r.integer("head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
  c.max_position_embeddings = r.integer("max_position_embeddings", 4096);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.initializer_range = r.number("initializer_range", 0.02);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  // Qwen2's q/k/v projections always carry a bias in transformers; Llama's only when asked.
  c.attention_bias = r.boolean("attention_bias", c.family == ModelFamily::Qwen2);
  c.bos_token_ids = r.ids("bos_token_id");
  c.eos_token_ids = r.ids("eos_token_id");
  if (c.family == ModelFamily::DeepSeek) parse_deepseek(r, c.model_type == "deepseek_v3", c);
  c.rope = parse_rope(root, r, source, layout);

  validate_model_config(c, source);
  return c;
}

void validate_model_config(const ModelConfig& c, const std::string& source) {
  auto require = [&](bool ok, const char* key, const std::string& what) {
    if (!ok) throw ConfigError(fmt::format("{}: key \"{}\": {}", source, key, what));
  };
  require(c.vocab_size > 0, "vocab_size", "must be positive");
  require(c.hidden_size > 0, "hidden_size", "must be positive");
  require(c.num_hidden_layers > 0, "num_hidden_layers", "must be positive");
  require(c.num_attention_heads > 0, "num_attention_heads", "must be positive");
  require(c.rms_norm_eps > 0, "rms_norm_eps", "must be positive");
  require(c.rope.theta > 0, "rope_theta", "must be positive");
  if (c.uses_mla()) {
    require(c.mla.kv_lora_rank > 0, "kv_lora_rank", "must be positive");
    require(c.mla.q_lora_rank >= 0, "q_lora_rank", "must be 0/null or positive");
    require(c.mla.qk_nope_head_dim > 0, "qk_nope_head_dim", "must be positive");
    require(c.mla.qk_rope_head_dim > 0 && c.mla.qk_rope_head_dim % 2 == 0, "qk_rope_head_dim",
            "must be positive and even");
    require(c.mla.v_head_dim > 0, "v_head_dim", "must be positive");
  } else {
    require(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0,
            "num_key_value_heads", "must divide num_attention_heads");
    require(c.head_dim > 0 && c.head_dim % 2 == 0, "head_dim", "must be positive and even");
  }
  bool has_dense_layer = false;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) has_dense_layer |= !c.is_moe_layer(l);
  if (has_dense_layer) require(c.intermediate_size > 0, "intermediate_size", "must be positive");
  if (c.has_moe()) {
    const MoeConfig& m = c.moe;
    require(m.moe_intermediate_size > 0, "moe_intermediate_size", "must be positive");
    require(m.moe_layer_freq > 0, "moe_layer_freq", "must be positive");
    require(m.n_group > 0 && m.n_routed_experts % m.n_group == 0, "n_group", "must divide n_routed_experts");
    require(m.topk_group > 0 && m.topk_group <= m.n_group, "topk_group", "must be in [1, n_group]");
    int64_t selectable = m.topk_method == MoeTopkMethod::Greedy
                             ? m.n_routed_experts
                             : m.topk_group * (m.n_routed_experts / m.n_group);
    require(m.num_experts_per_tok > 0 && m.num_experts_per_tok <= selectable, "num_experts_per_tok",
            fmt::format("must be in [1, {}] (experts reachable through the selected groups)", selectable));
    if (m.topk_method == MoeTopkMethod::NoauxTc)
      require(m.n_routed_experts / m.n_group >= 2, "n_group", "noaux_tc ranks groups by their top-2 experts: each group needs >= 2");
  }
  if (c.rope.scaling != RopeScaling::None) require(c.rope.factor >= 1.0, "rope_scaling.factor", "must be >= 1");
  if (c.rope.scaling == RopeScaling::Llama3)
    require(c.rope.high_freq_factor > c.rope.low_freq_factor, "rope_scaling.high_freq_factor",
            "must exceed low_freq_factor");
}

ModelConfig load_model_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("{}: cannot open file", path));
  std::stringstream text;
  text << in.rdbuf();
  return parse_model_config(text.str(), path);
}

namespace {

json ids_to_json(const std::vector<int64_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

json rope_to_json(const RopeConfig& rope) {
  switch (rope.scaling) {
    case RopeScaling::None: return nullptr;
    case RopeScaling::Linear: return {{"type", "linear"}, {"rope_type", "linear"}, {"factor", rope.factor}};
    case RopeScaling::Llama3:
      return {{"rope_type", "llama3"},
              {"factor", rope.factor},
              {"original_max_position_embeddings", rope.original_max_position_embeddings},
              {"low_freq_factor", rope.low_freq_factor},
              {"high_freq_factor", rope.high_freq_factor}};
    case RopeScaling::Yarn: {
      json j = {{"type", "yarn"},
                {"rope_type", "yarn"},
                {"factor", rope.factor},
                {"original_max_position_embeddings", rope.original_max_position_embeddings},
                {"beta_fast", rope.beta_fast},
                {"beta_slow", rope.beta_slow}};
      if (rope.mscale != 0.0) j["mscale"] = rope.mscale;
      if (rope.mscale_all_dim != 0.0) j["mscale_all_dim"] = rope.mscale_all_dim;
      return j;
    }
  }
  return nullptr;
}

const char* architecture_name(const ModelConfig& c) {
  if (c.family == ModelFamily::Qwen2) return "Qwen2ForCausalLM";
  if (c.family == ModelFamily::Llama) return "LlamaForCausalLM";
  return c.model_type == "deepseek_v2" ? "DeepseekV2ForCausalLM" : "DeepseekV3ForCausalLM";
}

const char* topk_method_name(MoeTopkMethod m) {
  switch (m) {
    case MoeTopkMethod::Greedy: return "greedy";
    case MoeTopkMethod::GroupLimitedGreedy: return "group_limited_greedy";
    case MoeTopkMethod::NoauxTc: return "noaux_tc";
  }
  return "greedy";
}

}  // namespace

std::string model_config_to_json(const ModelConfig& c, const std::string& torch_dtype) {
  json j;
  j["architectures"] = {architecture_name(c)};
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["num_key_value_heads"] = c.num_key_value_heads;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["initializer_range"] = c.initializer_range;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["attention_bias"] = c.attention_bias;
  j["bos_token_id"] = ids_to_json(c.bos_token_ids);
  j["eos_token_id"] = ids_to_json(c.eos_token_ids);
  j["rope_theta"] = c.rope.theta;
  j["rope_scaling"] = rope_to_json(c.rope);
  j["hidden_act"] = "silu";
  j["torch_dtype"] = torch_dtype;
  if (c.uses_mla()) {
    j["rope_interleave"] = c.rope.layout == RopeLayout::Interleaved;
    j["q_lora_rank"] = c.mla.q_lora_rank > 0 ? json(c.mla.q_lora_rank) : json(nullptr);
    j["kv_lora_rank"] = c.mla.kv_lora_rank;
    j["qk_nope_head_dim"] = c.mla.qk_nope_head_dim;
    j["qk_rope_head_dim"] = c.mla.qk_rope_head_dim;
    j["v_head_dim"] = c.mla.v_head_dim;
    j["head_dim"] = c.mla.qk_rope_head_dim;  // transformers' DeepseekV3Config stores the rope width here
    const MoeConfig& m = c.moe;
    j["n_routed_experts"] = m.n_routed_experts;
    j["n_shared_experts"] = m.n_shared_experts;
    j["num_experts_per_tok"] = m.num_experts_per_tok;
    j["moe_intermediate_size"] = m.moe_intermediate_size;
    j["n_group"] = m.n_group;
    j["topk_group"] = m.topk_group;
    j["topk_method"] = topk_method_name(m.topk_method);
    j["scoring_func"] = m.scoring == MoeScoring::Sigmoid ? "sigmoid" : "softmax";
    j["norm_topk_prob"] = m.norm_topk_prob;
    j["routed_scaling_factor"] = m.routed_scaling_factor;
    j["first_k_dense_replace"] = m.first_k_dense_replace;
    j["moe_layer_freq"] = m.moe_layer_freq;
    j["aux_loss_alpha"] = m.aux_loss_alpha;
    j["seq_aux"] = true;
  } else {
    j["head_dim"] = c.head_dim;
  }
  return j.dump(2) + "\n";
}

void save_model_config(const ModelConfig& config, const std::string& path) {
  std::ofstream out(path);
  if (!out) throw ConfigError(fmt::format("{}: cannot write file", path));
  out << model_config_to_json(config);
  if (!out) throw ConfigError(fmt::format("{}: write failed", path));
}

}  // namespace grpo
