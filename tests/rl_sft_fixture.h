#pragma once
// The small fine-tuning set the SFT and logit-distillation tests share: a character-level tokenizer,
// examples as the SFT stage builds them (BOS + prompt, completion + EOS), and tiny models over its
// vocabulary, in float64 by default so that the references can be exact.
#include <torch/torch.h>

#include <string>

#include "policy/tokenizer/tokenizer.h"
#include "policy_test_models.h"
#include "rl/sft.h"

namespace grpo::test {

struct CharSftFixture {
  Tokenizer tok = Tokenizer::make_char_level("abcdefgh", {"<pad>", "<bos>", "<eos>"});

  SftExample example(const std::string& prompt, const std::string& completion) const {
    SftExample e;
    e.prompt_ids = tok.encode(prompt);
    e.prompt_ids.insert(e.prompt_ids.begin(), tok.bos_id());
    e.completion_ids = tok.encode(completion);
    e.completion_ids.push_back(tok.eos_id());
    return e;
  }
  CausalLM model(const char* json, uint64_t seed, torch::ScalarType dtype = torch::kDouble) const {
    ModelConfig c = tiny_config(json);
    c.vocab_size = tok.vocab_size();
    torch::manual_seed(seed);
    CausalLM m(c);
    m->to(dtype);
    return m;
  }
  int32_t pad() const { return tok.pad_id(); }
};

}  // namespace grpo::test
