// Our restricted unpickler (core/nn/state_dict_pickle.h) on hand-written opcode
// streams in the layout torch.save writes (protocol 2).
#include "core/nn/state_dict_pickle.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <string>

#include "core/error.h"

namespace sscl {
namespace {

using namespace std::string_literals;

std::string str(const std::string& s) {  // BINUNICODE
  const auto n = static_cast<uint32_t>(s.size());
  return "X"s + static_cast<char>(n & 255) + static_cast<char>(n >> 8) + '\0' + '\0' + s;
}
std::string int1(int v) { return "K"s + static_cast<char>(v); }
const std::string kOrderedDict = "ccollections\nOrderedDict\n)R"s;  // OrderedDict()

// _rebuild_tensor_v2(storage 'key' of `numel` floats, offset, size, stride, False, OrderedDict())
std::string tensor(const std::string& key, int numel, int offset, const std::string& size, const std::string& stride) {
  return "ctorch._utils\n_rebuild_tensor_v2\n(("s + str("storage") + "ctorch\nFloatStorage\n" + str(key) + str("cpu") +
         int1(numel) + "tQ" + int1(offset) + size + stride + "\x89" + kOrderedDict + "tR";
}

// Storage "0": the floats 0, 1, ..., 5.
std::string storage_bytes(const std::string& key) {
  if (key != "0") throw IoError("no storage " + key);
  std::string bytes(6 * sizeof(float), '\0');
  for (int i = 0; i < 6; ++i) {
    const float v = static_cast<float>(i);
    std::memcpy(&bytes[i * sizeof(float)], &v, sizeof v);
  }
  return bytes;
}

std::string error_of(const std::string& pickle) {
  try {
    unpickle_state_dict(pickle, storage_bytes);
  } catch (const IoError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted";
  return "";
}

TEST(StateDictPickle, AnOrderedDictOfTensorsIsRebuiltFromItsStorages) {
  // {"w": storage[1:5] as 2x2 (stride 2, 1), "v": storage[0:6:3] (stride 3)},
  // memoized and with the OrderedDict's _metadata state (BUILD) at the end.
  const std::string pickle = "\x80\x02"s + kOrderedDict + "q\x00("s + str("w") +
                             tensor("0", 6, 1, int1(2) + int1(2) + "\x86", int1(2) + int1(1) + "\x86") + "q\x01" +
                             str("v") + tensor("0", 6, 0, int1(2) + "\x85", int1(3) + "\x85") + "u" + "}b" + ".";
  const auto read = unpickle_state_dict(pickle, storage_bytes);
  EXPECT_EQ(read.under, "");
  ASSERT_EQ(read.tensors.size(), 2u);
  EXPECT_EQ(read.tensors[0].first, "w");
  EXPECT_TRUE(read.tensors[0].second.equal(torch::tensor({{1.f, 2.f}, {3.f, 4.f}})));
  EXPECT_EQ(read.tensors[1].first, "v");
  EXPECT_TRUE(read.tensors[1].second.equal(torch::tensor({0.f, 3.f})));
  EXPECT_TRUE(read.tensors[1].second.is_contiguous());
}

TEST(StateDictPickle, ACheckpointDictHoldingAStateDictIsReadFromIt) {
  const std::string inner = kOrderedDict + str("w") + tensor("0", 6, 0, int1(6) + "\x85", int1(1) + "\x85") + "s";
  const std::string pickle = "\x80\x02}(" + str("epoch") + int1(3) + str("state_dict") + inner + "u.";
  const auto read = unpickle_state_dict(pickle, storage_bytes);
  EXPECT_EQ(read.under, "state_dict");
  ASSERT_EQ(read.tensors.size(), 1u);
  EXPECT_TRUE(read.tensors[0].second.equal(torch::arange(6, torch::kFloat)));

  const auto none = error_of("\x80\x02}(" + str("epoch") + int1(3) + "u.");
  EXPECT_NE(none.find("holds no state_dict (names to tensors), nor one under 'state_dict' or 'model': a dict of "
                      "'epoch'"),
            std::string::npos)
      << none;
}

TEST(StateDictPickle, ForeignGlobalsAndInstancesAreRefusedByName) {
  const auto foreign = error_of(
      "\x80\x02"
      "cos\nsystem\n" +
      str("ls") + "\x85R.");
  EXPECT_NE(foreign.find("pickle byte 2: the pickle imports os.system: only tensors in plain containers"),
            std::string::npos)
      << foreign;
  EXPECT_NE(error_of("\x80\x02" + kOrderedDict + "\x81.").find("opcode 0x81 is not read"), std::string::npos);
  EXPECT_NE(error_of("\x80\x04\x8c\x02os\x8c\x06system\x93."s).find("opcode 0x93 is not read"), std::string::npos);
  EXPECT_NE(error_of("\x80\x02\xff."s).find("pickle byte 2: opcode 0xff is not read"), std::string::npos);
}

// A dict that holds itself (memo put, then got back into it): refused as no
// state_dict, and freed (the sanitized build's LeakSanitizer checks; fuzzing
// found the leak of an earlier shared-ownership version).
TEST(StateDictPickle, ADictThatHoldsItselfIsRefusedAndFreed) {
  const auto cycle = error_of("\x80\x02}q\x00"s + str("self") + "h\x00s."s);
  EXPECT_NE(cycle.find("holds no state_dict"), std::string::npos) << cycle;
}

TEST(StateDictPickle, TruncatedOrInconsistentStreamsAreNamedWithTheOffset) {
  EXPECT_NE(error_of("\x80\x02}q\x00"s).find("pickle byte 5: the pickle ends without its STOP opcode"),
            std::string::npos);
  EXPECT_NE(error_of("\x80\x02X\xff\x00\x00\x00"
                     "ab."s)
                .find("pickle byte 2: a length past the end"),
            std::string::npos);
  EXPECT_NE(error_of("\x80\x02"
                     "cos\nsys"s)
                .find("a line argument with no newline"),
            std::string::npos);
  EXPECT_NE(error_of("\x80\x02h\x07."s).find("a memo entry 7 that was never put"), std::string::npos);
  EXPECT_NE(error_of("\x80\x02s."s).find("a pop from an empty stack"), std::string::npos);
  EXPECT_NE(error_of(""s).find("pickle byte 0"), std::string::npos);
  // A view past the end of its 6-element storage: offset 3, 2 x 2 at strides 2, 1 ends at element 6.
  const auto outside = error_of("\x80\x02}" + str("w") +
                                tensor("0", 6, 3, int1(2) + int1(2) + "\x86", int1(2) + int1(1) + "\x86") + "s.");
  EXPECT_NE(outside.find("a tensor that does not fit its storage of 6 elements"), std::string::npos) << outside;
  // A storage the zip does not hold, and one shorter than its element count.
  EXPECT_NE(error_of("\x80\x02}" + str("w") + tensor("9", 6, 0, int1(1) + "\x85", int1(1) + "\x85") + "s.")
                .find("no storage 9"),
            std::string::npos);
  EXPECT_NE(error_of("\x80\x02}" + str("w") + tensor("0", 7, 0, int1(1) + "\x85", int1(1) + "\x85") + "s.")
                .find("storage data/0 holds 24 bytes, fewer than 7 elements of Float"),
            std::string::npos);
}

}  // namespace
}  // namespace sscl
