#include "core/nn/state_dict_pickle.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "core/error.h"

namespace sscl {
namespace {

// A value on the unpickler's stack. Lists and dicts are shared: the memo hands
// out the same object that later opcodes fill. The Unpickler owns every value
// (a pickle may put a dict inside itself: shared ownership would leak the cycle).
struct Value;
using ValuePtr = Value*;
struct Value {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
  Kind kind = Kind::kNone;
  int64_t i = 0;
  double f = 0;
  std::string s;                // a string, or a global's "module.name"
  std::vector<ValuePtr> items;  // a tuple's or list's
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;
  at::Tensor tensor;  // a storage (1-D) or a tensor
};

const std::map<std::string, at::ScalarType>& storage_types() {
  static const std::map<std::string, at::ScalarType> types = {
      {"torch.FloatStorage", at::kFloat},       {"torch.DoubleStorage", at::kDouble}, {"torch.HalfStorage", at::kHalf},
      {"torch.BFloat16Storage", at::kBFloat16}, {"torch.LongStorage", at::kLong},     {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort},       {"torch.CharStorage", at::kChar},     {"torch.ByteStorage", at::kByte},
      {"torch.BoolStorage", at::kBool}};
  return types;
}

bool known_global(const std::string& name) {
  return name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
         name == "torch._utils._rebuild_parameter" || name == "torch.jit._pickle.restore_type_tag" ||
         storage_types().count(name) > 0;
}

class Unpickler {
 public:
  Unpickler(std::string_view pickle, const StorageBytes& storage) : in_(pickle), storage_(storage) {}

  ValuePtr make(Value::Kind kind) {
    values_.push_back(std::make_unique<Value>());
    values_.back()->kind = kind;
    return values_.back().get();
  }

  ValuePtr run() {
    while (true) {
      if (at_ >= in_.size()) fail(at_, "the pickle ends without its STOP opcode (truncated)");
      op_at_ = at_;
      const auto code = static_cast<unsigned char>(in_[at_++]);
      if (code == '.') {
        if (stack_.size() != 1) fail(op_at_, "STOP with " + std::to_string(stack_.size()) + " values on the stack");
        return stack_.back();
      }
      step(code);
    }
  }

 private:
  [[noreturn]] void fail(size_t where, const std::string& what) const {
    throw IoError("pickle byte " + std::to_string(where) + ": " + what);
  }

  static std::string name_of(unsigned char code) {
    static const char* hex = "0123456789abcdef";
    std::string name = "opcode 0x";
    name += hex[code >> 4];
    name += hex[code & 15];
    if (code >= 0x20 && code < 0x7f) name += std::string(" '") + static_cast<char>(code) + "'";
    return name;
  }

  std::string_view take(size_t n) {
    if (in_.size() - at_ < n) fail(op_at_, "an argument past the end (truncated)");
    const auto out = in_.substr(at_, n);
    at_ += n;
    return out;
  }
  uint64_t little(size_t n) {
    const auto bytes = take(n);
    uint64_t v = 0;
    for (size_t b = n; b-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[b]);
    return v;
  }
  std::string line() {
    const size_t end = in_.find('\n', at_);
    if (end == std::string_view::npos) fail(op_at_, "a line argument with no newline (truncated)");
    std::string out(in_.substr(at_, end - at_));
    at_ = end + 1;
    return out;
  }
  std::string counted(size_t width) {
    const uint64_t n = little(width);
    if (n > in_.size() - at_) fail(op_at_, "a length past the end (truncated)");
    return std::string(take(static_cast<size_t>(n)));
  }

  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back()))
      fail(op_at_, "a pop from an empty stack");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    if (stack_.empty()) fail(op_at_, "an empty stack");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail(op_at_, "no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  void push(ValuePtr v) { stack_.push_back(v); }
  void push_int(int64_t i) {
    auto v = make(Value::Kind::kInt);
    v->i = i;
    push(v);
  }
  void push_string(std::string s) {
    auto v = make(Value::Kind::kString);
    v->s = std::move(s);
    push(v);
  }
  ValuePtr tuple(std::vector<ValuePtr> items) {
    auto v = make(Value::Kind::kTuple);
    v->items = std::move(items);
    return v;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    const auto found = memo_.find(index);
    if (found == memo_.end()) fail(op_at_, "a memo entry " + std::to_string(index) + " that was never put");
    push(found->second);
  }
  Value& container(Value::Kind kind, const char* what) {
    Value& v = *top();
    if (v.kind != kind) fail(op_at_, std::string(what) + " on something else");
    return v;
  }
  int64_t parse_int(const std::string& text) {
    try {
      size_t used = 0;
      const long long v = std::stoll(text, &used);
      if (used != text.size() && !(used + 1 == text.size() && text.back() == 'L')) throw std::invalid_argument(text);
      return v;
    } catch (const std::exception&) {
      fail(op_at_, "'" + text.substr(0, 40) + "' is not an integer");
    }
  }

  void step(unsigned char code) {
    switch (code) {
      case 0x80: take(1); return;  // PROTO
      case 0x95: take(8); return;  // FRAME
      case '(': marks_.push_back(stack_.size()); return;
      case '}': push(make(Value::Kind::kDict)); return;
      case ']': push(make(Value::Kind::kList)); return;
      case ')': push(tuple({})); return;
      case 't': push(tuple(pop_to_mark())); return;
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<ValuePtr> items(static_cast<size_t>(code - 0x84));
        for (size_t k = items.size(); k-- > 0;) items[k] = pop();
        push(tuple(std::move(items)));
        return;
      }
      case 'l': {
        auto v = make(Value::Kind::kList);
        v->items = pop_to_mark();
        push(v);
        return;
      }
      case 'd': {
        auto items = pop_to_mark();
        if (items.size() % 2) fail(op_at_, "DICT with an odd number of items");
        auto v = make(Value::Kind::kDict);
        for (size_t k = 0; k < items.size(); k += 2) v->dict.emplace_back(items[k], items[k + 1]);
        push(v);
        return;
      }
      case 'a': {
        auto item = pop();
        container(Value::Kind::kList, "APPEND").items.push_back(item);
        return;
      }
      case 'e': {
        auto items = pop_to_mark();
        auto& list = container(Value::Kind::kList, "APPENDS").items;
        list.insert(list.end(), items.begin(), items.end());
        return;
      }
      case 's': {
        auto value = pop();
        auto key = pop();
        container(Value::Kind::kDict, "SETITEM").dict.emplace_back(key, value);
        return;
      }
      case 'u': {
        auto items = pop_to_mark();
        if (items.size() % 2) fail(op_at_, "SETITEMS with an odd number of items");
        auto& dict = container(Value::Kind::kDict, "SETITEMS").dict;
        for (size_t k = 0; k < items.size(); k += 2) dict.emplace_back(items[k], items[k + 1]);
        return;
      }
      case 'q': memo_put(little(1)); return;
      case 'r': memo_put(little(4)); return;
      case 0x94: memo_put(memo_.size()); return;  // MEMOIZE
      case 'p': memo_put(static_cast<uint64_t>(parse_int(line()))); return;
      case 'h': memo_get(little(1)); return;
      case 'j': memo_get(little(4)); return;
      case 'g': memo_get(static_cast<uint64_t>(parse_int(line()))); return;
      case 'N': push(make(Value::Kind::kNone)); return;
      case 0x88:
      case 0x89: {
        auto v = make(Value::Kind::kBool);
        v->i = code == 0x88;
        push(v);
        return;
      }
      case 'K': push_int(static_cast<int64_t>(little(1))); return;
      case 'M': push_int(static_cast<int64_t>(little(2))); return;
      case 'J': push_int(static_cast<int32_t>(static_cast<uint32_t>(little(4)))); return;
      case 0x8a: {  // LONG1: a little-endian two's complement of n bytes
        const uint64_t n = little(1);
        if (n > 8) fail(op_at_, "an integer of " + std::to_string(n) + " bytes (more than 64 bits)");
        uint64_t v = n ? little(static_cast<size_t>(n)) : 0;
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);
        push_int(static_cast<int64_t>(v));
        return;
      }
      case 'I':
      case 'L': {
        const std::string text = line();
        if (code == 'I' && (text == "00" || text == "01")) {
          auto v = make(Value::Kind::kBool);
          v->i = text == "01";
          push(v);
        } else {
          push_int(parse_int(text));
        }
        return;
      }
      case 'G': {  // BINFLOAT: big-endian
        const auto bytes = take(8);
        uint64_t bits = 0;
        for (char b : bytes) bits = (bits << 8) | static_cast<unsigned char>(b);
        auto v = make(Value::Kind::kFloat);
        std::memcpy(&v->f, &bits, sizeof bits);
        push(v);
        return;
      }
      case 'X': push_string(counted(4)); return;
      case 0x8c: push_string(counted(1)); return;
      case 0x8d: push_string(counted(8)); return;
      case 'T':
      case 'B': push_string(counted(4)); return;
      case 'U':
      case 'C': push_string(counted(1)); return;
      case 'c': {
        const std::string module = line();
        const std::string name = module + "." + line();
        if (!known_global(name))
          fail(op_at_, "the pickle imports " + name +
                           ": only tensors in plain containers are read (a state_dict: torch.save(model.state_dict(), "
                           "FILE)), and a pickle is never executed");
        auto v = make(Value::Kind::kGlobal);
        v->s = name;
        push(v);
        return;
      }
      case 'R': {
        auto args = pop();
        auto callable = pop();
        if (callable->kind != Value::Kind::kGlobal || args->kind != Value::Kind::kTuple)
          fail(op_at_, "REDUCE of something that is not a global with a tuple of arguments");
        push(call(callable->s, args->items));
        return;
      }
      case 'Q': push(persistent(pop())); return;  // BINPERSID
      case 'b': {                                 // BUILD: an OrderedDict's state (its _metadata) is not needed
        pop();
        if (top()->kind != Value::Kind::kDict) fail(op_at_, "BUILD of something other than a dict");
        return;
      }
      case '0': pop(); return;
      case '1': pop_to_mark(); return;
      case '2': push(top()); return;
      default:
        fail(op_at_, name_of(code) + " is not read: it is not a pickle opcode, or builds objects no state_dict has");
    }
  }

  static int64_t as_int(const ValuePtr& v, bool& ok) {
    ok = ok && (v->kind == Value::Kind::kInt || v->kind == Value::Kind::kBool);
    return v->i;
  }

  ValuePtr call(const std::string& name, const std::vector<ValuePtr>& args) {
    if (name == "collections.OrderedDict") {
      if (!args.empty()) fail(op_at_, "OrderedDict with arguments");
      return make(Value::Kind::kDict);
    }
    if (name == "torch.jit._pickle.restore_type_tag") {
      if (args.empty()) fail(op_at_, "restore_type_tag without its value");
      return args[0];
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (args.empty() || args[0]->kind != Value::Kind::kTensor) fail(op_at_, "_rebuild_parameter without a tensor");
      return args[0];
    }
    if (name == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
    fail(op_at_, name + " is not called in a state_dict");
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args) {
    if (args.size() < 4 || args[0]->kind != Value::Kind::kStorage || args[2]->kind != Value::Kind::kTuple ||
        args[3]->kind != Value::Kind::kTuple || args[2]->items.size() != args[3]->items.size())
      fail(op_at_, "_rebuild_tensor_v2 with arguments other than (storage, offset, size, stride, ...)");
    bool ok = true;
    const int64_t offset = as_int(args[1], ok);
    std::vector<int64_t> size, stride;
    int64_t last = offset, elements = 1;
    ok = ok && offset >= 0 && offset < (int64_t{1} << 40);
    constexpr int64_t kLimit = int64_t{1} << 40;  // far above any real tensor, far below overflow
    for (size_t d = 0; d < args[2]->items.size() && ok; ++d) {
      const int64_t n = as_int(args[2]->items[d], ok), step = as_int(args[3]->items[d], ok);
      ok = ok && n >= 0 && n < kLimit && step >= 0 && step < kLimit;
      if (!ok) break;
      size.push_back(n);
      stride.push_back(step);
      if (n > 0 && elements > kLimit / n) ok = false;
      elements *= n;
      if (n > 0 && step > 0 && n - 1 > (kLimit - last) / step) ok = false;
      if (ok && n > 0) last += (n - 1) * step;
    }
    const at::Tensor& storage = args[0]->tensor;
    if (!ok || offset < 0 || offset >= kLimit || (elements > 0 && last >= storage.numel()))
      fail(op_at_, "a tensor that does not fit its storage of " + std::to_string(storage.numel()) + " elements");
    auto v = make(Value::Kind::kTensor);
    v->tensor = elements == 0 ? at::empty(size, storage.options())
                              : storage.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous);
    return v;
  }

  // ('storage', StorageType, key, location, numel): the record data/<key>.
  ValuePtr persistent(const ValuePtr& pid) {
    const auto& t = pid->items;
    if (pid->kind != Value::Kind::kTuple || t.size() != 5 || t[0]->kind != Value::Kind::kString ||
        t[0]->s != "storage" || t[1]->kind != Value::Kind::kGlobal || !storage_types().count(t[1]->s) ||
        t[2]->kind != Value::Kind::kString || t[4]->kind != Value::Kind::kInt || t[4]->i < 0)
      fail(op_at_, "a persistent id that is not a storage ('storage', type, key, location, numel)");
    const at::ScalarType dtype = storage_types().at(t[1]->s);
    auto& cached = storages_[t[2]->s];
    if (!cached) {
      const std::string bytes = storage_(t[2]->s);
      const auto item = static_cast<int64_t>(at::elementSize(dtype));
      if (static_cast<int64_t>(bytes.size()) / item < t[4]->i)
        fail(op_at_, "storage data/" + t[2]->s + " holds " + std::to_string(bytes.size()) + " bytes, fewer than " +
                         std::to_string(t[4]->i) + " elements of " + std::string(c10::toString(dtype)));
      cached = make(Value::Kind::kStorage);
      cached->tensor = at::empty({t[4]->i}, at::TensorOptions().dtype(dtype));
      if (t[4]->i > 0) std::memcpy(cached->tensor.data_ptr(), bytes.data(), static_cast<size_t>(t[4]->i * item));
    }
    if (cached->tensor.scalar_type() != dtype) fail(op_at_, "storage data/" + t[2]->s + " read as two types");
    return cached;
  }

  std::string_view in_;
  const StorageBytes& storage_;
  size_t at_ = 0, op_at_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
  std::map<std::string, ValuePtr> storages_;
  std::vector<std::unique_ptr<Value>> values_;
};

// The dict's name -> tensor entries, or nullopt when it is not one.
std::optional<std::vector<std::pair<std::string, at::Tensor>>> tensor_dict(const Value& v) {
  if (v.kind != Value::Kind::kDict) return std::nullopt;
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [key, value] : v.dict) {
    if (key->kind != Value::Kind::kString || value->kind != Value::Kind::kTensor) return std::nullopt;
    out.emplace_back(key->s, value->tensor);
  }
  return out;
}

std::string describe_top(const Value& v) {
  if (v.kind != Value::Kind::kDict) return "not a dict";
  std::string keys;
  size_t shown = 0;
  for (const auto& [key, value] : v.dict) {
    if (shown++ == 8) return "a dict of " + keys + ", ...";
    keys += (keys.empty() ? "'" : ", '") + (key->kind == Value::Kind::kString ? key->s : "?") + "'";
  }
  return keys.empty() ? "an empty dict" : "a dict of " + keys;
}

}  // namespace

PickledStateDict unpickle_state_dict(std::string_view pickle, const StorageBytes& storage) {
  Unpickler unpickler(pickle, storage);  // owns every value until the tensors are copied out
  const ValuePtr top = unpickler.run();
  PickledStateDict out;
  if (auto tensors = tensor_dict(*top)) {
    out.tensors = std::move(*tensors);
    return out;
  }
  if (top->kind == Value::Kind::kDict)
    for (const char* key : {"state_dict", "model"})
      for (const auto& [k, value] : top->dict)
        if (k->kind == Value::Kind::kString && k->s == key)
          if (auto tensors = tensor_dict(*value)) {
            out.tensors = std::move(*tensors);
            out.under = key;
            return out;
          }
  throw IoError("holds no state_dict (names to tensors), nor one under 'state_dict' or 'model': " + describe_top(*top));
}

}  // namespace sscl
