#include "libgaze/core/strings.h"

#include <catch2/catch.hpp>

using namespace gaze;

TEST_CASE("edit distance counts single-character edits", "[strings]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("dims", "dims") == 0);
  CHECK(edit_distance("dimz", "dims") == 1);
  CHECK(edit_distance("depth", "depths") == 1);
  CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("nearest name suggests only plausible typos", "[strings]") {
  const std::vector<std::string> keys = {"model.dims", "model.depths", "run.seed"};
  CHECK(nearest_name("model.dimz", keys) == "model.dims");
  CHECK(nearest_name("model.depth", keys) == "model.depths");
  CHECK(nearest_name("completely.different", keys).empty());
  CHECK(suggest_suffix("run.sed", keys) == "; did you mean 'run.seed'?");
  CHECK(suggest_suffix("zzz", {"a", "b"}) == "; valid: a, b");
}

TEST_CASE("split, join, trim and grouped thousands", "[strings]") {
  CHECK(split("a.b.c", '.') == std::vector<std::string>{"a", "b", "c"});
  CHECK(split("", '.') == std::vector<std::string>{""});
  CHECK(join({"x", "y"}, ", ") == "x, y");
  CHECK(trim("  a b \r\n") == "a b");
  CHECK(group_thousands(3579104) == "3,579,104");
  CHECK(group_thousands(281) == "281");
  CHECK(group_thousands(-14434) == "-14,434");
}
