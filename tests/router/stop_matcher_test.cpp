// StopMatcher against a straightforward reference: cut the full text at the earliest
// occurrence of any stop string. Deltas are split at random byte positions (including inside
// UTF-8 characters and inside stop strings).
#include "router/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/utf8.h"

namespace strata::router {
namespace {

struct Reference {
  std::string text;
  bool matched = false;
};

Reference reference_cut(const std::string& full, const std::vector<std::string>& stops) {
  size_t best = std::string::npos;
  for (const std::string& s : stops) best = std::min(best, full.find(s));
  if (best == std::string::npos) return {full, false};
  return {full.substr(0, best), true};
}

// Feeds `full` split at `cuts`, returns what was emitted (and checks each piece is valid
// UTF-8 when the input is).
Reference run(const std::string& full, const std::vector<std::string>& stops,
              std::vector<size_t> cuts) {
  StopMatcher m(stops);
  Reference out;
  size_t prev = 0;
  cuts.push_back(full.size());
  for (size_t cut : cuts) {
    auto o = m.feed(std::string_view(full).substr(prev, cut - prev));
    EXPECT_TRUE(utf8::is_valid(o.text)) << "emitted a split character";
    out.text += o.text;
    out.matched = o.matched;
    prev = cut;
  }
  out.text += m.flush();
  return out;
}

TEST(StopMatcherTest, HoldsBackOnlyPossibleStopPrefixes) {
  StopMatcher m({"###", "END"});
  EXPECT_EQ(m.feed("Hello #").text, "Hello ");
  EXPECT_EQ(m.feed("#").text, "");
  EXPECT_EQ(m.feed("x E").text, "##x ");
  auto o = m.feed("NDING");
  EXPECT_TRUE(o.matched);
  EXPECT_EQ(o.text, "");
  EXPECT_EQ(o.stop_index, 1u);
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(m.feed("more").text, "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcherTest, FlushReturnsHeldTextWithoutMatch) {
  StopMatcher m({"</answer>"});
  EXPECT_EQ(m.feed("42 </ans").text, "42 ");
  EXPECT_EQ(m.flush(), "</ans");
}

TEST(StopMatcherTest, NoStopsPassesTextThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.feed("abc").text, "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcherTest, EarliestOccurrenceWinsOverListOrder) {
  StopMatcher m({"world", "lo w"});
  auto o = m.feed("hello world");
  EXPECT_TRUE(o.matched);
  EXPECT_EQ(o.text, "hel");
  EXPECT_EQ(o.stop_index, 1u);
}

TEST(StopMatcherTest, HoldsIncompleteUtf8) {
  StopMatcher m({"zzz"});
  EXPECT_EQ(m.feed("caf\xc3").text, "caf");
  EXPECT_EQ(m.feed("\xa9 \xe6\x97").text, "\xc3\xa9 ");
  EXPECT_EQ(m.feed("\xa5").text, "\xe6\x97\xa5");
}

TEST(StopMatcherTest, RandomSplitsMatchReference) {
  std::mt19937 rng(7);
  // Alphabet with overlaps and multi-byte characters, so stops and partial matches abound.
  const std::vector<std::string> alphabet = {
      "a", "b", "c", " ", "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x98\x80", "\n"};
  auto random_text = [&](size_t chars) {
    std::string s;
    for (size_t i = 0; i < chars; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  int matched = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<std::string> stops;
    const size_t num_stops = rng() % 4;
    for (size_t i = 0; i < num_stops; ++i) stops.push_back(random_text(1 + rng() % 4));
    const std::string full = random_text(rng() % 60);
    std::vector<size_t> cuts;
    const size_t num_cuts = full.empty() ? 0 : rng() % (full.size() + 1);
    for (size_t i = 0; i < num_cuts; ++i) cuts.push_back(rng() % (full.size() + 1));
    std::sort(cuts.begin(), cuts.end());
    const Reference want = reference_cut(full, stops);
    const Reference got = run(full, stops, cuts);
    ASSERT_EQ(got.text, want.text) << "iteration " << iter;
    ASSERT_EQ(got.matched, want.matched) << "iteration " << iter;
    matched += want.matched;
  }
  EXPECT_GT(matched, 500);  // the generator exercises matches, not only pass-through
}

TEST(StopMatcherTest, ByteByByteFeedMatchesReference) {
  const std::string full = "The answer: \xe6\x97\xa5\xe6\x9c\xac is here.\nQ: next";
  const std::vector<std::string> stops = {"\nQ:", "\xe6\x9c\xac is"};
  std::vector<size_t> cuts;
  for (size_t i = 1; i < full.size(); ++i) cuts.push_back(i);
  const Reference got = run(full, stops, cuts);
  EXPECT_TRUE(got.matched);
  EXPECT_EQ(got.text, "The answer: \xe6\x97\xa5");
}

}  // namespace
}  // namespace strata::router
