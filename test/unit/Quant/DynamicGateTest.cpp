//===- DynamicGateTest.cpp - Layer-band rule tables, quantizable roles ----===//
#include "lowbit/Quant/DynamicGate.h"
#include "lowbit/Quant/Presets.h"

#include <gtest/gtest.h>

using lowbit::formats::Format;
using namespace lowbit::quant;

namespace {

TEST(DynamicGateTest, BandsAreQuartersRoundedUp) {
  // 6 layers: 0-1 | 2-3 | 4-5; 8: 0-1 | 2-5 | 6-7; 32: 0-7 | 8-23 | 24-31.
  for (auto [layers, quarter] :
       {std::pair<int64_t, int64_t>{6, 2}, {8, 2}, {32, 8}, {1, 1}, {5, 2}}) {
    for (int64_t l = 0; l < layers; ++l) {
      bool first = l < quarter, last = l >= layers - quarter;
      EXPECT_EQ(inBand(GateBand::First, l, layers), first) << layers << " " << l;
      EXPECT_EQ(inBand(GateBand::Last, l, layers), last) << layers << " " << l;
      EXPECT_EQ(inBand(GateBand::Middle, l, layers), !first && !last);
      EXPECT_TRUE(inBand(GateBand::Layers, l, layers));
    }
    // Outside the layers only `all` matches.
    EXPECT_FALSE(inBand(GateBand::Outer, -1, layers));
    EXPECT_FALSE(inBand(GateBand::Layers, -1, layers));
    EXPECT_TRUE(inBand(GateBand::All, -1, layers));
  }
}

TEST(DynamicGateTest, PublishedTable) {
  const GateTable &t = GateTable::published();
  const int64_t L = 32;
  EXPECT_EQ(t.apply("token_embd", -1, L, Format::Q2_K), Format::Q5_K);
  EXPECT_EQ(t.apply("output", -1, L, Format::Q6_K), Format::Q5_K);
  // Outer: the sensitive projections IQ4_XS, the rest the preset's format.
  EXPECT_EQ(t.apply("attn_v", 0, L, Format::Q2_K), Format::IQ4_XS);
  EXPECT_EQ(t.apply("attn_output", 31, L, Format::IQ2_XXS), Format::IQ4_XS);
  EXPECT_EQ(t.apply("ffn_down_exps", 7, L, Format::IQ1_S), Format::IQ4_XS);
  EXPECT_EQ(t.apply("attn_q", 0, L, Format::IQ1_M), Format::IQ1_M);
  // Middle: attn_v/ffn_down IQ3_S; the rest at least IQ2_XXS.
  EXPECT_EQ(t.apply("attn_v", 8, L, Format::Q4_K), Format::IQ3_S);
  EXPECT_EQ(t.apply("ffn_down", 23, L, Format::IQ1_S), Format::IQ3_S);
  EXPECT_EQ(t.apply("ffn_up", 8, L, Format::IQ1_S), Format::IQ2_XXS);
  EXPECT_EQ(t.apply("attn_output", 8, L, Format::IQ1_M), Format::IQ2_XXS);
  EXPECT_EQ(t.apply("ffn_gate", 8, L, Format::IQ2_S), Format::IQ2_S);
  EXPECT_EQ(t.apply("ffn_gate", 8, L, Format::IQ2_XXS), Format::IQ2_XXS);
  // The text form parses back to the same rules.
  GateTable again;
  std::string error;
  ASSERT_TRUE(GateTable::parse(t.text(), "text", again, error)) << error;
  EXPECT_EQ(again.text(), t.text());
}

TEST(DynamicGateTest, FirstMatchWinsAndUnmatchedKeepsBase) {
  GateTable t;
  std::string error;
  ASSERT_TRUE(GateTable::parse("first attn_* q8_0\n"
                               "layers attn_q q4_0\n"
                               "last ffn_?p q6_k at-least\n",
                               "t", t, error))
      << error;
  const GateRule *rule = nullptr;
  EXPECT_EQ(t.apply("attn_q", 0, 8, Format::Q2_K, &rule), Format::Q8_0);
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->line, 1);
  EXPECT_EQ(t.apply("attn_q", 3, 8, Format::Q2_K, &rule), Format::Q4_0);
  EXPECT_EQ(rule->line, 2);
  EXPECT_EQ(t.apply("ffn_up", 7, 8, Format::Q2_K), Format::Q6_K);
  // at-least never lowers.
  EXPECT_EQ(t.apply("ffn_up", 7, 8, Format::Q8_0), Format::Q8_0);
  EXPECT_EQ(t.apply("ffn_down", 7, 8, Format::Q2_K, &rule), Format::Q2_K);
  EXPECT_EQ(rule, nullptr);
}

TEST(DynamicGateTest, ErrorsNameTheLine) {
  GateTable t;
  std::string error;
  EXPECT_FALSE(GateTable::parse("middle * q4_0\nouter attn_v\n", "f", t, error));
  EXPECT_EQ(error, "f:2: expected 'BAND KINDS FORMAT [at-least]', got 2 fields");
  EXPECT_FALSE(GateTable::parse("outer a||b q4_0\n", "f", t, error));
  EXPECT_EQ(error, "f:1: empty tensor kind in 'a||b'");
  EXPECT_FALSE(GateTable::parse("outer attn_v i8_sym_g32\n", "f", t, error));
  EXPECT_EQ(error, "f:1: format 'i8_sym_g32' cannot store a weight in a GGUF "
                   "file llama.cpp runs");
  EXPECT_FALSE(GateTable::parse("", "f", t, error));
  EXPECT_EQ(error, "f:0: the table has no rules");
}

} // namespace

// llama.cpp's `quantize` test, by role: norms, biases, the MoE router and the
// positional tables stay; matrices, also those no importer named, quantize.
TEST(PresetsTest, QuantizableByRole) {
  using lowbit::gguf::TensorRole;
  using lowbit::quant::isQuantizable;
  EXPECT_TRUE(isQuantizable(TensorRole{"attn_q", 3, -1}, 2));
  EXPECT_TRUE(isQuantizable(TensorRole{"ffn_down_exps", 1, -1}, 3));
  EXPECT_TRUE(isQuantizable(TensorRole{"token_embd", -1, -1}, 2));
  EXPECT_TRUE(isQuantizable(TensorRole{"ffn_gate_inp_shexp", 0, -1}, 2));
  EXPECT_TRUE(isQuantizable(TensorRole{}, 2));
  EXPECT_FALSE(isQuantizable(TensorRole{"attn_q", 3, -1}, 1));
  EXPECT_FALSE(isQuantizable(TensorRole{"attn_norm", 0, -1}, 2));
  EXPECT_FALSE(isQuantizable(TensorRole{"attn_q.bias", 0, -1}, 2));
  EXPECT_FALSE(isQuantizable(TensorRole{"ffn_gate_inp", 0, -1}, 2));
  EXPECT_FALSE(isQuantizable(TensorRole{"position_embd", -1, -1}, 2));
  EXPECT_FALSE(isQuantizable(TensorRole{"altup_proj", -1, -1}, 3));
  EXPECT_FALSE(isQuantizable(TensorRole{"time_mix_key", 2, -1}, 2));
}
