#include "libgaze/io/pickle.h"

#include <catch2/catch.hpp>

#include "libgaze/core/error.h"
#include "tests/pickle_fixtures.h"

using namespace gaze;
using Catch::Contains;
using pickle::Value;

TEST_CASE("a torch.save state dict pickle decodes to tensor views", "[pickle]") {
  const auto root = pickle::unpickle(testing::tiny_state_dict_pickle(), "t.pkl");
  REQUIRE(root->kind == Value::Kind::kDict);
  CHECK(root->get("epoch")->integer == 7);
  const auto model = root->get("model");
  REQUIRE(model);
  REQUIRE(model->kind == Value::Kind::kDict);
  const auto w = model->get("w");
  REQUIRE(w);
  REQUIRE(w->kind == Value::Kind::kTensor);
  CHECK(w->sizes == std::vector<int64_t>{2, 3});
  CHECK(w->strides == std::vector<int64_t>{3, 1});
  CHECK(w->storage_offset == 0);
  CHECK(w->storage->storage_type == "FloatStorage");
  CHECK(w->storage->text == "0");
  CHECK(w->storage->storage_numel == 6);
  CHECK(root->get("missing") == nullptr);
}

TEST_CASE("scalars: negative LONG1, BINFLOAT, booleans, memo reuse", "[pickle]") {
  // [-2, 1.5, True, None, <memo 1 again: the same 1.5>]
  using namespace std::string_literals;
  const std::string p = "\x80\x02]q\x00(\x8a\x01\xfe"s + "G\x3f\xf8\x00\x00\x00\x00\x00\x00q\x01"s +
                        "\x88Nh\x01"
                        "e."s;
  const auto v = pickle::unpickle(p, "s.pkl");
  REQUIRE(v->kind == Value::Kind::kList);
  REQUIRE(v->items.size() == 5);
  CHECK(v->items[0]->integer == -2);
  CHECK(v->items[1]->real == 1.5);
  CHECK(v->items[2]->boolean);
  CHECK(v->items[3]->kind == Value::Kind::kNone);
  CHECK(v->items[4] == v->items[1]);  // one value, through the memo
}

TEST_CASE("malformed pickles fail with the byte offset, never crash", "[pickle]") {
  const std::string good = testing::tiny_state_dict_pickle();
  CHECK_THROWS_WITH(pickle::unpickle(good.substr(0, good.size() / 2), "cut.pkl"),
                    Contains("cut.pkl: byte") && Contains("truncated"));
  CHECK_THROWS_WITH(pickle::unpickle("\x80\x02\xff", "op.pkl"), "op.pkl: byte 2: unsupported pickle opcode 0xff");
  CHECK_THROWS_WITH(pickle::unpickle("\x80\x02h\x05.", "memo.pkl"), Contains("memo key 5 was never stored"));
  CHECK_THROWS_WITH(pickle::unpickle("\x80\x02s.", "empty.pkl"), Contains("empty stack"));
  CHECK_THROWS_WITH(pickle::unpickle("", "nothing.pkl"), Contains("truncated"));
  // A persistent id that is not a torch storage.
  CHECK_THROWS_WITH(pickle::unpickle("\x80\x02K\x01Q.", "pid.pkl"), Contains("unsupported persistent id"));
  // Every prefix of a valid pickle is rejected cleanly.
  for (size_t n = 0; n < good.size(); ++n) {
    CHECK_THROWS_AS(pickle::unpickle(good.substr(0, n), "prefix.pkl"), Error);
  }
}

TEST_CASE("deep nesting and containers that grow after nesting are refused", "[pickle]") {
  // 200,000 nested empty lists: "]" then "]" ... then APPEND 200,000 times. Used to overflow the
  // stack in the recursive destructor; now refused at level 257.
  std::string deep = "\x80\x02";
  for (int i = 0; i < 200000; ++i) deep += "]";
  for (int i = 0; i < 199999; ++i) deep += "a";
  deep += ".";
  CHECK_THROWS_WITH(pickle::unpickle(deep, "deep.pkl"), Contains("deep.pkl: byte") && Contains("deeper than 256"));
  // 256 levels are fine.
  std::string ok = "\x80\x02";
  for (int i = 0; i < 256; ++i) ok += "]";
  for (int i = 0; i < 255; ++i) ok += "a";
  ok += ".";
  CHECK(pickle::unpickle(ok, "ok.pkl")->depth == 256);
  // A list memoised, nested in another, then appended to: the way to build a cycle.
  // ] q\x00 (memo 0)  ] h\x00 a (outer.append(inner))  h\x00 K\x01 a (inner.append(1))
  using namespace std::string_literals;
  CHECK_THROWS_WITH(pickle::unpickle("\x80\x02]q\x00]h\x00"
                                     "ah\x00K\x01"
                                     "a."s,
                                     "grow.pkl"),
                    Contains("APPEND into a container already nested"));
  // A list appended into itself (a cycle: shared pointers that never free).
  CHECK_THROWS_WITH(pickle::unpickle("\x80\x02]q\x00h\x00"
                                     "a."s,
                                     "self.pkl"),
                    Contains("a container inside itself"));
}
