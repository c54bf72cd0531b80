// State declared once (core/state.h): one visit_state() saves and loads every
// kind of field by name, and a checkpoint that does not fit names the field.
#include "core/state.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "core/error.h"

namespace sscl {
namespace {

struct Counter : Stateful {
  int64_t seen = 0;
  at::Tensor sum;
  void visit_state(StateVisitor& s) override {
    s("seen", seen);
    s("sum", sum, Place::kDevice);
  }
};

struct Everything : Stateful {
  at::Tensor images, absent;
  std::vector<at::Tensor> per_parameter;
  int64_t checks = 0;
  int task = -1;
  double rate = 0.0;
  bool started = false;
  std::string records;
  std::vector<int64_t> gathered;
  std::vector<double> weights;
  Counter counter;
  torch::nn::Linear net{2, 3};
  torch::nn::Linear teacher{nullptr};
  bool extra = false;  // declares one more field when true

  void visit_state(StateVisitor& s) override {
    s("images", images);
    s("absent", absent);
    s("per_parameter", per_parameter, Place::kDevice);
    s("checks", checks);
    s("task", task);
    s("rate", rate);
    s("started", started);
    s("records", records);
    s("gathered", gathered);
    s("weights", weights);
    s("counter", counter);
    s("net", *net);
    s.optional_module("teacher", teacher, [] { return torch::nn::Linear(2, 3); });
    if (extra) s("extra", checks);
  }
};

std::string saved(Stateful& root) { return StateVisitor::to_bytes(root); }

void load(Stateful& root, const std::string& bytes) { StateVisitor::from_bytes(root, bytes, torch::kCPU); }

TEST(State, EveryKindOfFieldComesBackByName) {
  torch::manual_seed(0);
  Everything a;
  a.images = torch::randint(0, 255, {3, 4, 4, 1}).to(torch::kByte);
  a.per_parameter = {torch::randn({2}), torch::randn({3, 3})};
  a.checks = 7;
  a.task = 2;
  a.rate = 0.125;
  a.started = true;
  a.records = "[{\"task\": 0}]";
  a.gathered = {0, 1};
  a.weights = {0.5, 2.0};
  a.counter.seen = 11;
  a.counter.sum = torch::tensor({1.5}, torch::kDouble);
  a.teacher = torch::nn::Linear(2, 3);
  const std::string bytes = saved(a);

  Everything b;  // other values everywhere, no teacher
  b.absent = torch::ones({1});
  load(b, bytes);
  EXPECT_TRUE(b.images.equal(a.images));
  EXPECT_FALSE(b.absent.defined()) << "an undefined tensor loads as undefined";
  ASSERT_EQ(b.per_parameter.size(), 2u);
  EXPECT_TRUE(b.per_parameter[1].equal(a.per_parameter[1]));
  EXPECT_EQ(b.checks, 7);
  EXPECT_EQ(b.task, 2);
  EXPECT_EQ(b.rate, 0.125);
  EXPECT_TRUE(b.started);
  EXPECT_EQ(b.records, a.records);
  EXPECT_EQ(b.gathered, a.gathered);
  EXPECT_EQ(b.weights, a.weights);
  EXPECT_EQ(b.counter.seen, 11);
  EXPECT_TRUE(b.counter.sum.equal(a.counter.sum));
  EXPECT_TRUE(b.net->weight.equal(a.net->weight)) << "module parameters are loaded in place";
  ASSERT_TRUE(b.teacher) << "an optional module is built when the checkpoint has one";
  EXPECT_TRUE(b.teacher->weight.equal(a.teacher->weight));

  Everything c;
  c.teacher = torch::nn::Linear(2, 3);
  Everything without;  // no teacher saved
  load(c, saved(without));
  EXPECT_FALSE(c.teacher) << "and reset when the checkpoint has none";
}

TEST(State, AMissingOrExtraFieldIsNamed) {
  Everything plain;
  Everything more;
  more.extra = true;
  try {
    load(more, saved(plain));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no state field 'extra'"), std::string::npos) << e.what();
  }
  try {
    load(plain, saved(more));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("holds state field 'extra'"), std::string::npos) << e.what();
  }
}

TEST(State, AFieldDeclaredTwiceIsAnError) {
  struct Twice : Stateful {
    int64_t a = 0;
    void visit_state(StateVisitor& s) override {
      s("a", a);
      s("a", a);
    }
  } twice;
  torch::serialize::OutputArchive archive;
  EXPECT_THROW(StateVisitor::save(twice, archive), Error);
}

TEST(State, AnArchiveWithoutAFieldListIsRefused) {
  torch::serialize::OutputArchive archive;
  archive.write("method.buffer.counters", torch::tensor({1, 2}));
  std::ostringstream bytes;
  archive.save_to(bytes);
  Counter c;
  try {
    load(c, bytes.str());
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("before checkpoint format 2"), std::string::npos) << e.what();
  }
}

// What a distributed run compares across its ranks at every task end.
TEST(State, FingerprintsChangeWithAnyFieldButNotWithAMeasurement) {
  struct Timed : Stateful {
    Counter counter;
    double wall_s = 0;
    void visit_state(StateVisitor& s) override {
      s("counter", counter);
      s.measurement("wall_s", wall_s);
    }
  } a, b;
  a.counter.sum = b.counter.sum = torch::tensor({1.0f, 2.0f});
  a.wall_s = 0.5;
  b.wall_s = 7.0;  // another rank's clock
  EXPECT_EQ(StateVisitor::fingerprint(a), StateVisitor::fingerprint(b));
  const auto fields = StateVisitor::field_fingerprints(a);
  ASSERT_EQ(fields.size(), 2u);  // the measurement is not among them
  EXPECT_EQ(fields[0].first, "counter.seen");
  EXPECT_EQ(fields[1].first, "counter.sum");

  b.counter.sum = torch::tensor({1.0f, 2.0000002f});  // one bit of one value
  EXPECT_NE(StateVisitor::fingerprint(a), StateVisitor::fingerprint(b));
  b.counter.sum = torch::tensor({1.0, 2.0}, torch::kDouble);  // the same values in another dtype
  EXPECT_NE(StateVisitor::fingerprint(a), StateVisitor::fingerprint(b));
  b.counter.sum = torch::tensor({{1.0f, 2.0f}});  // another shape
  EXPECT_NE(StateVisitor::fingerprint(a), StateVisitor::fingerprint(b));
  b.counter.sum = a.counter.sum.clone();
  b.counter.seen = 1;
  EXPECT_NE(StateVisitor::fingerprint(a), StateVisitor::fingerprint(b));

  // The measurement still saves and loads.
  Timed c;
  load(c, saved(b));
  EXPECT_EQ(c.wall_s, 7.0);
}

}  // namespace
}  // namespace sscl
