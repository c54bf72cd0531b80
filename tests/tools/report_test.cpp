// tools/report's tables on fixture run directories, checked cell by cell: seeds
// averaged (mean ± sample std), other configs on their own rows, failed and
// incomplete runs listed and never averaged in.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "tests/tools/run_binary.h"
#include "tools/reporting/page.h"
#include "tools/reporting/plots.h"
#include "tools/reporting/tables.h"

namespace sscl::report {
namespace {

using sscl::testing::TempDir;
using sscl::testing::write_text;
namespace fs = std::filesystem;

void write_run(const fs::path& dir, const std::string& name, int64_t seed, double lr, double til, double cil, double ms,
               bool finished = true) {
  fs::create_directories(dir);
  write_text(dir / "config.toml", "name = \"" + name + "\"\n[train]\nseed = " + std::to_string(seed) +
                                      "\n[optimizer]\nlr = " + std::to_string(lr) +
                                      "\n[method]\nname = \"der\"\nsemi = \"fixmatch\"\n[data]\ndataset = "
                                      "\"fashion_mnist\"\n[model]\nbackbone = \"small_cnn\"\n");
  if (!finished) return;
  nlohmann::json r;
  r["num_tasks"] = 5;
  r["accuracy"]["task_il"] = {{"final_average", til}, {"mean_average", til + 1}, {"forgetting", 2.0}, {"bwt", -2.0}};
  r["accuracy"]["class_il"] = {
      {"final_average", cil}, {"mean_average", cil + 1}, {"forgetting", nullptr}, {"bwt", -30.0}};
  r["timing"] = {{"ms_per_iter_median", ms}, {"train_s", 50.0}};
  r["memory"] = {{"peak_rss_mib", 400.0}};
  r["method_stats"] = {{"buffer_bytes", 1000.0}, {"offline_tier_peak_disk_bytes", 5e6}, {"mask_rate", 0.9}};
  write_text(dir / "results.json", r.dump());
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_run(dir_ / "a" / "seed0", "der_fixmatch", 0, 0.03, 90.0, 60.0, 50.0);
    write_run(dir_ / "a" / "seed1", "der_fixmatch", 1, 0.03, 92.0, 62.0, 54.0);
    write_run(dir_ / "b" / "lr01", "der_fixmatch", 0, 0.1, 80.0, 50.0, 51.0);
    write_run(dir_ / "c" / "killed", "der_fixmatch", 2, 0.03, 0, 0, 0, false);
    write_run(dir_ / "c" / "failed", "der_fixmatch", 3, 0.03, 0, 0, 0, false);
    write_text(dir_ / "c" / "failed" / "train.log", "[x] [sscl] run failed: non-finite loss at task 1\n");
    runs_ = collect_runs({dir_.path()});
    rows_ = aggregate(runs_);
  }
  TempDir dir_;
  std::vector<RunRecord> runs_;
  std::vector<Row> rows_;
};

TEST_F(ReportTest, SeedsAreAveragedAndOtherConfigsKeepTheirOwnRow) {
  ASSERT_EQ(runs_.size(), 5u);
  ASSERT_EQ(rows_.size(), 2u);
  // Both rows have the same label; the seeds tell them apart.
  const Row* seeds = rows_[0].seeds.size() == 2 ? &rows_[0] : &rows_[1];
  const Row* single = seeds == &rows_[0] ? &rows_[1] : &rows_[0];
  EXPECT_EQ(seeds->seeds, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(single->seeds, (std::vector<int64_t>{0}));
  EXPECT_EQ(seeds->label, "der_fixmatch (der+fixmatch, small_cnn, task-il)");
  EXPECT_EQ(seeds->dataset, "fashion_mnist");
  // Column 0: task-IL final 90, 92 -> 91 ± sqrt(2); column 1: class-IL 60, 62.
  EXPECT_DOUBLE_EQ(seeds->cells[0].mean, 91.0);
  EXPECT_NEAR(seeds->cells[0].std, std::sqrt(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(seeds->cells[1].mean, 61.0);
  EXPECT_DOUBLE_EQ(single->cells[0].mean, 80.0);
  EXPECT_EQ(single->cells[0].n, 1);
  // class-IL forgetting is null in every run: no value, not a zero.
  EXPECT_EQ(seeds->cells[5].n, 0);
  // ms/iter 50, 54; s/task 50 / 5 tasks; buffer bytes without the disk figure.
  EXPECT_DOUBLE_EQ(seeds->cells[8].mean, 52.0);
  EXPECT_DOUBLE_EQ(seeds->cells[9].mean, 10.0);
  EXPECT_DOUBLE_EQ(seeds->cells[11].mean, 1000.0);
}

TEST_F(ReportTest, MarkdownListsFailedAndIncompleteRunsWithoutAveragingThem) {
  const auto md = markdown(rows_, runs_);
  EXPECT_NE(md.find("| der_fixmatch (der+fixmatch, small_cnn, task-il) | 0 1 | 91.00 ± 1.41 | 61.00 ± 1.41 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| der_fixmatch (der+fixmatch, small_cnn, task-il) | 0 | 80.00 | 50.00 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("killed (incomplete): no results.json"), std::string::npos) << md;
  EXPECT_NE(md.find("failed (failed): [x] [sscl] run failed: non-finite loss at task 1"), std::string::npos) << md;
  EXPECT_NE(md.find("### fashion_mnist"), std::string::npos) << md;
}

TEST_F(ReportTest, CsvHasMeanAndStdColumnsAndQuotesLabels) {
  const auto text = csv(rows_);
  EXPECT_EQ(text.substr(0, text.find('\n')).substr(0, 57), "dataset,run,seeds,task_il_final_mean,task_il_final_std,cl");
  EXPECT_NE(text.find("fashion_mnist,\"der_fixmatch (der+fixmatch, small_cnn, task-il)\",0 1,91,1.41421,61,1.41421,"),
            std::string::npos)
      << text;
  // A metric without values leaves both fields empty.
  EXPECT_NE(text.find(",,"), std::string::npos) << text;
}

TEST_F(ReportTest, LatexIsBooktabsWithEscapedNames) {
  const auto tex = latex(rows_);
  for (const char* rule : {"\\toprule", "\\midrule", "\\bottomrule", "\\begin{tabular}{lrrrrrrrrrrrr}"})
    EXPECT_NE(tex.find(rule), std::string::npos) << rule;
  EXPECT_NE(tex.find("der\\_fixmatch (der+fixmatch, small\\_cnn, task-il) & $91.00 \\pm 1.41$ & $61.00 \\pm 1.41$"),
            std::string::npos)
      << tex;
  EXPECT_NE(tex.find("\\caption{fashion\\_mnist}"), std::string::npos) << tex;
}

TEST_F(ReportTest, AConfigThatDoesNotLoadIsAFailedRunNamingTheFile) {
  write_text(dir_ / "a" / "seed0" / "config.toml", "name = [unclosed\n");
  const auto runs = collect_runs({dir_.path()});
  const auto bad =
      std::find_if(runs.begin(), runs.end(), [](const RunRecord& r) { return r.dir.filename() == "seed0"; });
  ASSERT_NE(bad, runs.end());
  EXPECT_EQ(bad->status, RunStatus::kFailed);
  EXPECT_NE(bad->reason.find("config.toml"), std::string::npos) << bad->reason;
  EXPECT_EQ(aggregate(runs).size(), 2u);  // seed 1 alone now, and lr 0.1
}

TEST_F(ReportTest, PlotsAndThePageAreWrittenWithRealContent) {
  // Give the runs matrices and per-task timings to draw.
  for (const char* run : {"a/seed0", "a/seed1", "b/lr01"}) {
    auto j = nlohmann::json::parse(testing::read_file(dir_ / run / "results.json"));
    j["accuracy"]["task_il"]["matrix"] = {{95.0, nullptr}, {90.0, 97.0}};
    j["accuracy"]["class_il"]["matrix"] = {{95.0, nullptr}, {10.0, 96.0}};
    j["timing"]["tasks"] = {{{"ms_per_iter_median", 40.0}}, {{"ms_per_iter_median", 60.0}}};
    write_text(dir_ / run / "results.json", j.dump());
  }
  const auto runs = collect_runs({dir_.path()});
  const auto rows = aggregate(runs);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_TRUE(rows[0].task_il[1][0].has_value());
  EXPECT_DOUBLE_EQ(*rows[0].task_il[1][0], 90.0);
  EXPECT_FALSE(rows[0].task_il[0][1].has_value());

  const auto out = dir_ / "report";
  const auto files = write_figures_and_page(rows, runs, out);
  // Per dataset 2 scatters + 1 timing chart; per row 2 scenarios x (curves + matrix): 3 + 2 x 4 = 11, each PNG,
  // SVG and pgfplots.
  EXPECT_EQ(files.size(), 33u);
  // The scatter of the two seeds of "a" has error bars, in pgfplots too.
  const auto tex = testing::read_file(out / "plots" / "fashion_mnist_task-il_accuracy_vs_ms.tex");
  EXPECT_NE(tex.find("\\begin{axis}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("y explicit"), std::string::npos) << tex;
  EXPECT_NE(tex.find(" +- ("), std::string::npos) << tex;
  EXPECT_EQ(std::count(tex.begin(), tex.end(), '{'), std::count(tex.begin(), tex.end(), '}')) << tex;
  const auto heat = cv::imread(
      (out / "plots" / "fashion_mnist_00_der_fixmatch_der+fixmatch_small_cnn_task-il_task-il_matrix.png").string());
  ASSERT_FALSE(heat.empty());
  EXPECT_GE(heat.cols, 320);
  // Non-trivial: the cells are coloured (not white, not grey).
  int coloured = 0;
  for (int y = 0; y < heat.rows; ++y)
    for (int x = 0; x < heat.cols; ++x) {
      const auto p = heat.at<cv::Vec3b>(y, x);
      coloured += p[0] != p[1] || p[1] != p[2];
    }
  EXPECT_GT(coloured, 1000);
  const auto svg = testing::read_file(out / "plots" / "fashion_mnist_ms_per_task.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_GE(std::count(svg.begin(), svg.end(), '\n'), 30);
  const auto html = testing::read_file(out / "report.html");
  EXPECT_NE(html.find("<table>"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);  // nothing loaded from elsewhere
  size_t figures = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) ++figures;
  EXPECT_EQ(figures, 11u);
  EXPECT_NE(html.find("killed (incomplete)"), std::string::npos);
}

// tools/infer's edge-cloud sweeps under the report's folders are drawn as one
// figure, a line per sweep; an infer.json cut short is named.
TEST_F(ReportTest, EdgeCloudSweepsAreDrawnAndATruncatedInferJsonIsNamed) {
  nlohmann::json infer;
  infer["edge_cloud"]["route"] = "confidence:sweep";
  infer["edge_cloud"]["sweep"] = {{{"upload_share", 0.0}, {"accuracy", 90.0}},
                                  {{"upload_share", 0.5}, {"accuracy", 97.0}},
                                  {{"upload_share", 1.0}, {"accuracy", 96.0}}};
  for (const char* d : {"edge_small", "no_cloud", "cut"}) fs::create_directories(dir_ / "infer" / d);
  write_text(dir_ / "infer" / "edge_small" / "infer.json", infer.dump());
  write_text(dir_ / "infer" / "no_cloud" / "infer.json", R"({"accuracy": {}})");  // no sweep: not drawn
  const auto sweeps = collect_sweeps({dir_.path()});
  ASSERT_EQ(sweeps.size(), 1u);
  EXPECT_EQ(sweeps[0].label, "edge_small: confidence:sweep");
  ASSERT_EQ(sweeps[0].points.size(), 3u);
  EXPECT_DOUBLE_EQ(sweeps[0].points[1].first, 50.0);
  EXPECT_DOUBLE_EQ(sweeps[0].points[1].second, 97.0);

  const auto out = dir_ / "report";
  const auto with = write_figures_and_page(rows_, runs_, out, sweeps);
  const auto without = write_figures_and_page(rows_, runs_, dir_ / "report_without");
  EXPECT_EQ(with.size(), without.size() + 3);  // its PNG, SVG and pgfplots
  const auto svg = testing::read_file(out / "plots" / "edge_cloud_route_sweep.svg");
  EXPECT_NE(svg.find("edge_small: confidence:sweep"), std::string::npos);
  EXPECT_NE(testing::read_file(out / "report.html").find("Edge-cloud collaborative inference"), std::string::npos);

  const std::string text = infer.dump();
  write_text(dir_ / "infer" / "cut" / "infer.json", text.substr(0, text.size() / 2));
  try {
    collect_sweeps({dir_.path()});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cut/infer.json: not an infer.json"), std::string::npos) << e.what();
  }
}

// Axes on round values: 1, 2 or 5 times a power of ten, about five intervals,
// covering the data.
TEST(ReportPlots, TicksFallOnRoundValues) {
  EXPECT_EQ(nice_ticks(-5.399, 99.99), (std::vector<double>{-20, 0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(nice_ticks(47.29, 52.1), (std::vector<double>{47, 48, 49, 50, 51, 52, 53}));
  EXPECT_EQ(nice_ticks(0, 100), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  const auto tenths = nice_ticks(0, 1);
  ASSERT_EQ(tenths.size(), 6u);
  EXPECT_NEAR(tenths[3], 0.6, 1e-12);
  EXPECT_EQ(tick_label(tenths[3], 0.2), "0.6");
  EXPECT_EQ(tick_label(20, 20), "20");
  EXPECT_EQ(tick_label(-0.0, 1), "0");
  EXPECT_EQ(tick_label(0.25, 0.05), "0.25");
  const auto small = nice_ticks(0.003, 0.0071);
  EXPECT_NEAR(small.front(), 0.003, 1e-15);
  EXPECT_NEAR(small.back(), 0.008, 1e-15);
}

// The labels a chart draws are those ticks, and its pgfplots code carries the
// same ticks, the colours and every point with its error bar.
TEST(ReportPlots, ChartsLabelRoundTicksAndWritePgfplots) {
  Series a{"der_fixmatch & co", {{10.2, 47.29}, {20.7, 99.99}}, {}, {1.5, 0.5}};
  const Canvas c = line_chart("accuracy", "ms/iter", "accuracy (%)", {a});
  std::vector<std::string> labels;
  for (const auto& shape : c.shapes)
    if (shape.kind == Shape::kText) labels.push_back(shape.text);
  for (const std::string want : {"40", "60", "80", "100", "10", "12", "22"})
    EXPECT_NE(std::find(labels.begin(), labels.end(), want), labels.end()) << want;
  EXPECT_EQ(std::find(labels.begin(), labels.end(), "99.99"), labels.end());
  EXPECT_NE(c.pgfplots.find("ytick={40,50,60,70,80,90,100,110}"), std::string::npos) << c.pgfplots;
  EXPECT_NE(c.pgfplots.find("(10.2,47.29) +- (0,1.5)"), std::string::npos) << c.pgfplots;
  EXPECT_NE(c.pgfplots.find("\\definecolor{sscl0}{RGB}{31,119,180}"), std::string::npos) << c.pgfplots;
  EXPECT_NE(c.pgfplots.find("\\addlegendentry{der\\_fixmatch \\& co}"), std::string::npos) << c.pgfplots;
}

// ms/iter on a log scale: 1-2-5 ticks per decade (decades alone over a wide
// range), points placed by their logarithm, pgfplots in xmode=log.
TEST(ReportPlots, LogScaleTicksAndPlacement) {
  EXPECT_EQ(log_ticks(3.2, 180), (std::vector<double>{2, 5, 10, 20, 50, 100, 200}));
  EXPECT_EQ(log_ticks(10, 100), (std::vector<double>{10, 20, 50, 100}));
  EXPECT_EQ(log_ticks(0.5, 5e4), (std::vector<double>{0.1, 1, 10, 100, 1000, 1e4, 1e5}));
  Series fast{"fast", {{10, 90}}, {20}, {}}, slow{"slow", {{100, 95}}, {}, {}};
  const Canvas c = scatter_chart("acc", "ms/iter", "accuracy (%)", {fast, slow}, /*log_x=*/true);
  std::vector<double> centres;
  for (const auto& shape : c.shapes)
    if (shape.kind == Shape::kCircle) centres.push_back(shape.x0);
  ASSERT_EQ(centres.size(), 2u);
  // 10 and 100 are the first and last ticks: the plot area's two ends.
  EXPECT_NEAR(centres[0], 64, 1e-9);
  EXPECT_NEAR(centres[1], 640 - 200, 1e-9);
  // The error bar of "fast" (10 +- 20) is clipped at the axis, not sent to log(-10).
  for (const auto& shape : c.shapes)
    if (shape.kind == Shape::kLine) EXPECT_TRUE(std::isfinite(shape.x0) && std::isfinite(shape.x1));
  EXPECT_NE(c.pgfplots.find("xmode=log"), std::string::npos) << c.pgfplots;
  EXPECT_THROW(scatter_chart("acc", "ms", "acc", {Series{"zero", {{0, 1}}, {}, {}}}, true), std::runtime_error);
}

}  // namespace
}  // namespace sscl::report
