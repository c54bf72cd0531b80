// model.pretrained's reader and loader on files Python wrote
// (tests/fixtures/pretrained/make_fixtures.py, Debian's python3-torch 1.13):
// a torchvision-named CIFAR ResNet-18 gives Python's logits in our ResNet-18,
// a SimSiam-style checkpoint loads under its prefix, and the bad files are
// refused naming the file and what is wrong.
#include "core/nn/pretrained.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "core/nn/classifier.h"
#include "core/nn/state_dict_file.h"
#include "tests/tools/run_binary.h"

namespace sscl {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

fs::path fixture(const std::string& name) { return fs::path(SSCL_SOURCE_DIR) / "tests/fixtures/pretrained" / name; }

// Our CIFAR ResNet-18 at the fixtures' width (4) for 3 x 16 x 16 images.
Classifier resnet18_w4(int64_t classes = 10, uint64_t seed = 1) {
  torch::manual_seed(seed);
  auto config = Config::from_string("[model]\nbase_width = 4\n", "model.toml");
  return Classifier(BackboneRegistry::get().at("resnet18")(config.section("model"), {3, 16, 16}), classes);
}

// Our MobileNetV2 (reference variant) at the fixture's width for 3 x 16 x 16 images.
Classifier mobilenet_v2_w01(uint64_t seed) {
  torch::manual_seed(seed);
  auto config = Config::from_string("[model]\nwidth_mult = 0.1\n", "model.toml");
  return Classifier(BackboneRegistry::get().at("mobilenet_v2")(config.section("model"), {3, 16, 16}), 10);
}

at::Tensor fixed_input() { return torch::linspace(-2, 2, 2 * 3 * 16 * 16).reshape({2, 3, 16, 16}); }

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

// Loads the fixture `name`.pt strictly into `model`, every tensor through a
// renaming, and compares the eval-mode logits with Python's (`name`_logits.json).
void expect_pythons_logits(Classifier& model, const std::string& name) {
  const auto file = read_state_dict_file(fixture(name + ".pt"));
  EXPECT_EQ(file.format, "torch.save state_dict");
  const auto report = load_pretrained(*model, file, "", /*strict=*/true);
  EXPECT_EQ(report.loaded_tensors, report.model_tensors);
  EXPECT_EQ(report.loaded_tensors, report.file_tensors);  // num_batches_tracked too
  EXPECT_EQ(report.renamed, report.loaded_tensors);
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  EXPECT_EQ(report.loaded_parameters, parameters);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(fixed_input());
  const auto expected = nlohmann::json::parse(testing::read_file(fixture(name + "_logits.json")))["logits"];
  ASSERT_EQ(logits.sizes(), (at::IntArrayRef{2, 10}));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t c = 0; c < 10; ++c) EXPECT_NEAR(logits[i][c].item<double>(), expected[i][c].get<double>(), 1e-5);
}

// Every tensor is renamed: backbone.*, downsample -> shortcut, fc -> head.
TEST(Pretrained, TorchvisionNamedResNet18GivesPythonsLogits) {
  auto model = resnet18_w4();
  expect_pythons_logits(model, "resnet18_w4");
}

// torchvision's MobileNetV2 names (features.*, classifier.1) onto the
// reference variant, whose blocks are torchvision's: block 1 has no expansion
// conv, so its conv.0 is the depthwise conv; the others' conv.0 is the expansion.
TEST(Pretrained, TorchvisionNamedMobileNetV2GivesPythonsLogits) {
  auto model = mobilenet_v2_w01(1);
  expect_pythons_logits(model, "mobilenet_v2_w01");
  // kuangliu's variant has an expansion conv in block 1 and projection
  // shortcuts torchvision's has not: what does not fit is reported, not loaded.
  auto kuangliu_config = Config::from_string("[model]\nwidth_mult = 0.1\nvariant = \"kuangliu\"\n", "model.toml");
  Classifier kuangliu(BackboneRegistry::get().at("mobilenet_v2")(kuangliu_config.section("model"), {3, 16, 16}), 10);
  const auto partial = load_pretrained(*kuangliu, read_state_dict_file(fixture("mobilenet_v2_w01.pt")), "", false);
  EXPECT_FALSE(partial.missing.empty());
  EXPECT_LT(partial.loaded_tensors, partial.model_tensors);
}

TEST(Pretrained, SimSiamStyleCheckpointLoadsItsBackboneUnderThePrefix) {
  const auto file = read_state_dict_file(fixture("resnet18_w4_simsiam.pt"));
  EXPECT_EQ(file.format, "torch.save checkpoint['state_dict']");
  auto model = resnet18_w4();
  const auto report = load_pretrained(*model, file, "module.backbone.", false);
  EXPECT_EQ(report.outside_prefix, 2);  // the projector
  EXPECT_EQ(report.missing, (std::vector<std::string>{"head.bias", "head.weight"}));
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_TRUE(report.unexpected.empty());
  // The same backbone as the plain state_dict gives.
  auto reference = resnet18_w4(10, 2);
  load_pretrained(*reference, read_state_dict_file(fixture("resnet18_w4.pt")), "", false);
  model->eval(), reference->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(model->backbone().forward(fixed_input()).equal(reference->backbone().forward(fixed_input())));
  const auto json = to_json(report);
  EXPECT_EQ(json["missing"].size(), 2u);
  EXPECT_NE(describe(report).find("2 missing"), std::string::npos) << describe(report);

  const auto strict = error_of([&] { load_pretrained(*resnet18_w4(), file, "module.backbone.", true); });
  EXPECT_NE(strict.find("model.pretrained_strict: 2 missing ('head.bias', 'head.weight')"), std::string::npos)
      << strict;
  const auto nothing = error_of([&] { load_pretrained(*resnet18_w4(), file, "encoder.", false); });
  EXPECT_NE(nothing.find("model.pretrained_prefix = 'encoder.' matches none of its"), std::string::npos) << nothing;
}

TEST(Pretrained, TensorsOfOtherShapesAreSkippedAndListed) {
  auto model = resnet18_w4(5);  // a head of 5 classes, the file's has 10
  const auto before = model->parameters().back().clone();
  const auto file = read_state_dict_file(fixture("resnet18_w4.pt"));
  const auto report = load_pretrained(*model, file, "", false);
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_NE(report.skipped[0].find("fc.weight: [10, 32] in the file, [5, 32] in the model (head.weight)"),
            std::string::npos)
      << report.skipped[0];
  EXPECT_TRUE(report.missing.empty());
  EXPECT_EQ(report.loaded_tensors, report.file_tensors - 2);
  EXPECT_TRUE(model->parameters().back().equal(before));  // the head keeps its own weights
  const auto strict = error_of([&] { load_pretrained(*resnet18_w4(5), file, "", true); });
  EXPECT_NE(strict.find("2 skipped ('fc.weight: [10, 32]"), std::string::npos) << strict;
}

TEST(Pretrained, SsclModelPtAndCheckpointRoundTrip) {
  TempDir dir;
  auto trained = resnet18_w4(10, 3);
  torch::save(trained, (dir / "model.pt").string());
  torch::serialize::OutputArchive checkpoint, model_archive;
  trained->save(model_archive);
  checkpoint.write("format", torch::tensor({2}));
  checkpoint.write("model", model_archive);
  checkpoint.save_to((dir / "ckpt.pt").string());
  for (const auto& [name, format] : {std::pair{"model.pt", "sscl model.pt"}, {"ckpt.pt", "sscl checkpoint"}}) {
    const auto file = read_state_dict_file(dir / name);
    EXPECT_EQ(file.format, format);
    auto fresh = resnet18_w4(10, 4);
    const auto report = load_pretrained(*fresh, file, "", true);
    EXPECT_EQ(report.renamed, 0) << name;
    const auto a = trained->parameters(), b = fresh->parameters();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].equal(b[i])) << name << " parameter " << i;
  }
}

// The way back (tools/export --state-dict): `model` under torchvision's
// `names`, read by Python's torch.load into the fixtures' torchvision-named
// `python_class` (load_state_dict, strict), gives our logits; our loader reads
// it into `back` too.
void expect_python_reads(Classifier model, TensorNames names, const std::string& first_name,
                         const std::string& python_class, Classifier back) {
  TempDir dir;
  model->train();
  model->forward(fixed_input() * 0.5);  // BatchNorm statistics that are not the defaults
  model->eval();
  const auto tensors = named_tensors(*model, names);  // as tools/export --state-dict
  EXPECT_EQ(tensors.front().first, first_name);
  testing::write_text(dir / "state_dict.pt", state_dict_bytes(tensors));

  testing::write_text(dir / "load.py",
                      "import json, sys, torch\n"
                      "sys.path.insert(0, sys.argv[1])\n"
                      "import make_fixtures\n"
                      "m = make_fixtures." +
                          python_class +
                          "\n"
                          "m.load_state_dict(torch.load(sys.argv[2]))\n"
                          "m.eval()\n"
                          "x = torch.linspace(-2, 2, 2 * 3 * 16 * 16).reshape(2, 3, 16, 16)\n"
                          "print(json.dumps(m(x).tolist()))\n");
  const auto py = testing::run_shell("/usr/bin/python3 '" + (dir / "load.py").string() + "' '" + fixture("").string() +
                                         "' '" + (dir / "state_dict.pt").string() + "'",
                                     dir);
  ASSERT_EQ(py.exit_code, 0) << "Python's torch.load + load_state_dict (python3-torch): " << py.err;
  const auto python = nlohmann::json::parse(py.out);
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(fixed_input());
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t c = 0; c < 10; ++c) EXPECT_NEAR(python[i][c].get<double>(), logits[i][c].item<double>(), 1e-5);

  load_pretrained(*back, read_state_dict_file(dir / "state_dict.pt"), "", true);
  back->eval();
  EXPECT_TRUE(back->forward(fixed_input()).equal(logits));
}

TEST(Pretrained, StateDictUnderTorchvisionNamesLoadsInPythonAndBack) {
  expect_python_reads(resnet18_w4(10, 5), TensorNames::kTorchvisionResNet, "conv1.weight", "ResNet18(4, 10)",
                      resnet18_w4(10, 6));
  expect_python_reads(mobilenet_v2_w01(5), TensorNames::kTorchvisionMobileNetV2, "features.0.0.weight",
                      "MobileNetV2(0.1, 10)", mobilenet_v2_w01(6));
}

TEST(Pretrained, BadFilesAreRefusedNamingTheFileAndTheReason) {
  TempDir dir;
  const auto legacy = error_of([] { read_state_dict_file(fixture("legacy.pt")); });
  EXPECT_NE(legacy.find("legacy.pt: PyTorch's legacy (non-zip) format"), std::string::npos) << legacy;
  EXPECT_NE(legacy.find("torch.save(torch.load(OLD), NEW)"), std::string::npos) << legacy;
  const auto foreign = error_of([] { read_state_dict_file(fixture("foreign_class.pt")); });
  EXPECT_NE(foreign.find("foreign_class.pt: pickle byte 184: the pickle imports argparse.Namespace"), std::string::npos)
      << foreign;

  const std::string whole = testing::read_file(fixture("resnet18_w4.pt"));
  testing::write_text(dir / "truncated.pt", whole.substr(0, whole.size() / 2));
  const auto truncated = error_of([&] { read_state_dict_file(dir / "truncated.pt"); });
  EXPECT_NE(truncated.find("truncated.pt: truncated, or not a zip: no end-of-central-directory record fits the file"),
            std::string::npos)
      << truncated;
  testing::write_text(dir / "notes.txt", "lr = 0.1\n");
  const auto text = error_of([&] { read_state_dict_file(dir / "notes.txt"); });
  EXPECT_NE(text.find("notes.txt: not a PyTorch weights file"), std::string::npos) << text;
  const auto absent = error_of([&] { read_state_dict_file(dir / "absent.pt"); });
  EXPECT_NE(absent.find("absent.pt: no such file"), std::string::npos) << absent;
}

}  // namespace
}  // namespace sscl
