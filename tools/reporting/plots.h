// Plots for reports, drawn once as a list of shapes and rendered both as SVG (text)
// and PNG (OpenCV), so that the two never disagree; each chart also comes as
// pgfplots code with its data inline (Canvas::pgfplots), for LaTeX users to
// restyle. Three kinds: line charts (accuracy curves, iteration time per task),
// scatter plots (accuracy vs ms/iter) and heatmaps (the accuracy matrix). Axes
// run between round ticks (1-2-5 steps).
//
// Drawn by hand: Debian's plotting libraries are Python's (matplotlib) or
// gnuplot, a program and not a library; pulling either into a C++ report tool
// would make it depend on an interpreter or a second process for ~300 lines of
// shapes.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sscl::report {

using Rgb = std::array<int, 3>;

struct Shape {
  enum Kind { kLine, kRect, kCircle, kText } kind = kLine;
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // line ends; rect corners; circle centre (x0, y0) and radius x1
  Rgb color{0, 0, 0};
  bool filled = false;
  double width = 1;  // stroke
  std::string text;  // kText: drawn from (x0, y0) (baseline left), size in x1 pixels
};

struct Canvas {
  int width = 640, height = 420;
  std::vector<Shape> shapes;
  std::string pgfplots;  // a tikzpicture with the chart's data inline (\usepackage{pgfplots})
};

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;
  // Sample standard deviations of each point (over seeds), drawn as error bars;
  // empty: none. Same length as `points` when given.
  std::vector<double> x_err, y_err;
};

// Ticks on round values covering [lo, hi]: a step of 1, 2 or 5 times a power of
// ten giving about `target` intervals, from the multiple of the step at or below
// lo to the one at or above hi.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// Ticks of a log axis covering [lo, hi] (lo > 0): 1, 2 and 5 times each power of
// ten, or only the powers of ten when that would be more than 10 ticks; from the
// tick at or below lo to the one at or above hi.
std::vector<double> log_ticks(double lo, double hi);
// A tick's label with as many decimals as the step needs ("0.5", "20", "-5").
std::string tick_label(double value, double step);

// Lines through each series' points (and a marker at each); x ticks at the given
// integer positions labeled by `x_labels` when given.
Canvas line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                  const std::vector<Series>& series, const std::vector<std::string>& x_labels = {});
// One labeled point per series (its first point); `log_x`: x on a log scale
// (every x must be > 0).
Canvas scatter_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<Series>& series, bool log_x = false);
// matrix[i][j] (missing: blank) as coloured cells with their values; rows "after task i", columns "task j".
Canvas heatmap(const std::string& title, const std::vector<std::vector<std::optional<double>>>& matrix, double lo = 0,
               double hi = 100);

std::string to_svg(const Canvas& canvas);
// Throws std::runtime_error naming the file when it cannot be written.
void write_png(const Canvas& canvas, const std::filesystem::path& file);

}  // namespace sscl::report
