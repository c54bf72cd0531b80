#include "tools/reporting/plots.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace sscl::report {

namespace {

// Margins of the plot area inside the canvas.
constexpr double kLeft = 64, kRight = 200, kTop = 46, kBottom = 48;
const Rgb kBlack{0, 0, 0}, kGrey{200, 200, 200};

// 20 distinguishable colours (Tableau 20), cycled.
Rgb palette(size_t i) {
  static const Rgb colors[] = {{31, 119, 180},  {255, 127, 14},  {44, 160, 44},   {214, 39, 40},   {148, 103, 189},
                               {140, 86, 75},   {227, 119, 194}, {127, 127, 127}, {188, 189, 34},  {23, 190, 207},
                               {174, 199, 232}, {255, 187, 120}, {152, 223, 138}, {255, 152, 150}, {197, 176, 213},
                               {196, 156, 148}, {247, 182, 210}, {199, 199, 199}, {219, 219, 141}, {158, 218, 229}};
  return colors[i % 20];
}

void line(Canvas& c, double x0, double y0, double x1, double y1, Rgb color, double width = 1) {
  c.shapes.push_back({Shape::kLine, x0, y0, x1, y1, color, false, width, ""});
}
void text(Canvas& c, double x, double y, const std::string& s, double size = 12, Rgb color = kBlack) {
  c.shapes.push_back({Shape::kText, x, y, size, 0, color, false, 1, s});
}

struct Range {
  double lo, hi;
};

// The data's extent on one axis, error bars included; a point's extent when
// every value is the same.
Range data_range(const std::vector<Series>& series, bool x) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : series)
    for (size_t k = 0; k < s.points.size(); ++k) {
      const double v = x ? s.points[k].first : s.points[k].second;
      const auto& errors = x ? s.x_err : s.y_err;
      const double e = k < errors.size() && std::isfinite(errors[k]) ? errors[k] : 0.0;
      lo = std::min(lo, v - e);
      hi = std::max(hi, v + e);
    }
  if (!std::isfinite(lo)) return {0, 1};
  if (hi - lo < 1e-9) return {lo - 1, hi + 1};
  return {lo, hi};
}

double tick_step(const std::vector<double>& ticks) { return ticks.size() > 1 ? ticks[1] - ticks[0] : 1.0; }

// Axes, grid, ticks and titles; returns the mapping of data to pixels. The axes
// run from the first tick to the last.
struct Frame {
  Range xr, yr;
  std::vector<double> xticks, yticks;
  double w, h;
  bool log_x = false;
  double px(double x) const {
    const double t = log_x ? std::log10(x / xr.lo) / std::log10(xr.hi / xr.lo) : (x - xr.lo) / (xr.hi - xr.lo);
    return kLeft + t * (w - kLeft - kRight);
  }
  double py(double y) const { return h - kBottom - (y - yr.lo) / (yr.hi - yr.lo) * (h - kTop - kBottom); }
};

Frame frame(Canvas& c, const std::string& title, const std::string& x_label, const std::string& y_label, Range xr,
            Range yr, const std::vector<std::string>& x_labels, bool log_x = false) {
  Frame f{xr, yr, {}, nice_ticks(yr.lo, yr.hi), static_cast<double>(c.width), static_cast<double>(c.height), log_x};
  f.yr = {f.yticks.front(), f.yticks.back()};
  if (x_labels.empty()) {
    f.xticks = log_x ? log_ticks(xr.lo, xr.hi) : nice_ticks(xr.lo, xr.hi);
    f.xr = {f.xticks.front(), f.xticks.back()};
  }
  c.shapes.push_back({Shape::kRect, 0, 0, f.w, f.h, {255, 255, 255}, true, 1, ""});
  text(c, kLeft, 20, title, 14);
  for (const double v : f.yticks) {  // y grid and ticks
    line(c, kLeft, f.py(v), f.w - kRight, f.py(v), kGrey);
    text(c, 8, f.py(v) + 4, tick_label(v, tick_step(f.yticks)), 11);
  }
  if (!x_labels.empty()) {
    for (size_t i = 0; i < x_labels.size(); ++i)
      text(c, f.px(static_cast<double>(i)) - 4, f.h - kBottom + 16, x_labels[i], 11);
  } else {
    for (const double v : f.xticks) {
      line(c, f.px(v), f.h - kBottom, f.px(v), f.h - kBottom + 4, kBlack);
      // On a log axis each tick is labelled with the decimals it needs itself.
      text(c, f.px(v) - 10, f.h - kBottom + 16, tick_label(v, log_x ? v : tick_step(f.xticks)), 11);
    }
  }
  line(c, kLeft, f.h - kBottom, f.w - kRight, f.h - kBottom, kBlack);
  line(c, kLeft, kTop, kLeft, f.h - kBottom, kBlack);
  text(c, (kLeft + f.w - kRight) / 2 - 30, f.h - 10, x_label, 12);
  text(c, 8, kTop - 10, y_label, 11);
  return f;
}

// Error bars of point k of `s`, with 3-pixel caps.
void error_bars(Canvas& c, const Frame& f, const Series& s, size_t k, Rgb color) {
  const auto [x, y] = s.points[k];
  if (k < s.y_err.size() && s.y_err[k] > 0) {
    line(c, f.px(x), f.py(y - s.y_err[k]), f.px(x), f.py(y + s.y_err[k]), color, 1);
    for (const double end : {y - s.y_err[k], y + s.y_err[k]})
      line(c, f.px(x) - 3, f.py(end), f.px(x) + 3, f.py(end), color);
  }
  if (k < s.x_err.size() && s.x_err[k] > 0) {
    // A log axis shows no value <= 0: its bars are clipped to the axis.
    const auto clip = [&f](double v) { return f.log_x ? std::clamp(v, f.xr.lo, f.xr.hi) : v; };
    const double left = clip(x - s.x_err[k]), right = clip(x + s.x_err[k]);
    line(c, f.px(left), f.py(y), f.px(right), f.py(y), color, 1);
    for (const double end : {left, right}) line(c, f.px(end), f.py(y) - 3, f.px(end), f.py(y) + 3, color);
  }
}

// LaTeX's special characters escaped, for titles, labels and legend entries.
std::string latex(const std::string& s) {
  std::string out;
  for (const char ch : s) {
    switch (ch) {
      case '\\': out += "\\textbackslash{}"; break;
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}': out += std::string("\\") + ch; break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string joined(const std::vector<double>& values) {
  std::string out;
  for (const double v : values) out += (out.empty() ? "" : ",") + fmt::format("{:.6g}", v);
  return out;
}

// The chart as a pgfplots axis: the same ticks, colours and data (with error
// bars where given); `marks_only` for a scatter plot.
std::string pgfplots_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const Frame& f, const std::vector<Series>& series, const std::vector<std::string>& x_labels,
                           bool marks_only) {
  std::string out = "% " + latex(title) + ", written by sscl's tools/report; needs \\usepackage{pgfplots}\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const Rgb c = palette(i);
    out += fmt::format("\\definecolor{{sscl{}}}{{RGB}}{{{},{},{}}}\n", i, c[0], c[1], c[2]);
  }
  out += "\\begin{tikzpicture}\n\\begin{axis}[title={" + latex(title) + "}, xlabel={" + latex(x_label) + "}, ylabel={" +
         latex(y_label) + "},\n  legend pos=outer north east, legend cell align=left, grid=major,\n";
  out += fmt::format("  ymin={:.6g}, ymax={:.6g}, ytick={{{}}},\n", f.yr.lo, f.yr.hi, joined(f.yticks));
  if (x_labels.empty()) {
    if (f.log_x) out += "  xmode=log, log ticks with fixed point,\n";
    out += fmt::format("  xmin={:.6g}, xmax={:.6g}, xtick={{{}}}]\n", f.xr.lo, f.xr.hi, joined(f.xticks));
  } else {
    std::vector<double> positions;
    std::string labels;
    for (size_t i = 0; i < x_labels.size(); ++i) {
      positions.push_back(static_cast<double>(i));
      labels += (i ? "," : "") + std::string("{") + latex(x_labels[i]) + "}";
    }
    out += fmt::format("  xmin={:.6g}, xmax={:.6g}, xtick={{{}}}, xticklabels={{{}}}]\n", f.xr.lo, f.xr.hi,
                       joined(positions), labels);
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const bool errors = !s.x_err.empty() || !s.y_err.empty();
    out += fmt::format("\\addplot+[color=sscl{}, mark=*, mark options={{fill=sscl{}}}{}{}] coordinates {{", i, i,
                       marks_only ? ", only marks" : "",
                       errors ? ", error bars/.cd, x dir=both, x explicit, y dir=both, y explicit" : "");
    for (size_t k = 0; k < s.points.size(); ++k) {
      out += fmt::format(" ({:.6g},{:.6g})", s.points[k].first, s.points[k].second);
      if (errors)
        out += fmt::format(" +- ({:.6g},{:.6g})", k < s.x_err.size() ? s.x_err[k] : 0.0,
                           k < s.y_err.size() ? s.y_err[k] : 0.0);
    }
    out += " };\n\\addlegendentry{" + latex(s.name) + "}\n";
  }
  return out + "\\end{axis}\n\\end{tikzpicture}\n";
}

void legend(Canvas& c, const std::vector<Series>& series) {
  for (size_t i = 0; i < series.size(); ++i) {
    const double y = kTop + 10 + 18 * static_cast<double>(i);
    const double x = c.width - kRight + 10;
    line(c, x, y - 4, x + 18, y - 4, palette(i), 3);
    std::string name = series[i].name.size() > 28 ? series[i].name.substr(0, 27) + "…" : series[i].name;
    text(c, x + 24, y, name, 11);
  }
}

std::string hex(Rgb c) { return fmt::format("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]); }

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

// Hershey fonts have no "…": PNG text keeps ASCII only.
std::string ascii(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) out += ch < 128 ? static_cast<char>(ch) : '.';
  return out;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo - 1, lo, lo + 1};
  const double raw = (hi - lo) / std::max(1, target);
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
  // A little slack so that a bound already on a tick (up to rounding) stays one.
  const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
  std::vector<double> ticks;
  for (double k = first; k <= last; ++k) ticks.push_back(k * step == 0 ? 0.0 : k * step);
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  if (!(lo > 0) || !(hi > lo) || !std::isfinite(hi)) return {1, 10};
  const auto covering = [lo, hi](const std::vector<double>& mantissas) {
    std::vector<double> ticks;
    for (int e = static_cast<int>(std::floor(std::log10(lo))) - 1; e <= static_cast<int>(std::ceil(std::log10(hi)));
         ++e)
      for (const double m : mantissas) ticks.push_back(m * std::pow(10.0, e));
    // From the last tick at or below lo to the first at or above hi.
    const double eps = 1e-9;
    auto first = std::upper_bound(ticks.begin(), ticks.end(), lo * (1 + eps));
    if (first != ticks.begin()) --first;
    auto last = std::lower_bound(ticks.begin(), ticks.end(), hi * (1 - eps));
    if (last == ticks.end()) --last;
    return std::vector<double>(first, last + 1);
  };
  auto ticks = covering({1, 2, 5});
  return ticks.size() > 10 ? covering({1}) : ticks;
}

std::string tick_label(double value, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  std::string out = fmt::format("{:.{}f}", value, decimals);
  return out == "-0" ? "0" : out;
}

Canvas line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                  const std::vector<Series>& series, const std::vector<std::string>& x_labels) {
  Canvas c;
  Range xr = data_range(series, true);
  if (!x_labels.empty()) xr = {-0.3, static_cast<double>(x_labels.size()) - 0.7};
  const Frame f = frame(c, title, x_label, y_label, xr, data_range(series, false), x_labels);
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& pts = series[i].points;
    for (size_t k = 0; k + 1 < pts.size(); ++k)
      line(c, f.px(pts[k].first), f.py(pts[k].second), f.px(pts[k + 1].first), f.py(pts[k + 1].second), palette(i), 2);
    for (size_t k = 0; k < pts.size(); ++k) {
      error_bars(c, f, series[i], k, palette(i));
      c.shapes.push_back({Shape::kCircle, f.px(pts[k].first), f.py(pts[k].second), 3, 0, palette(i), true, 1, ""});
    }
  }
  legend(c, series);
  c.pgfplots = pgfplots_chart(title, x_label, y_label, f, series, x_labels, false);
  return c;
}

Canvas scatter_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<Series>& series, bool log_x) {
  Canvas c;
  Range xr = data_range(series, true);
  if (log_x) {
    // Error bars may reach 0 or below, which a log axis cannot show: the range
    // is that of the points, each bar clipped to it.
    xr = {std::numeric_limits<double>::infinity(), 0};
    for (const auto& s : series)
      for (const auto& [x, y] : s.points) {
        if (!(x > 0)) throw std::runtime_error("a log scale needs x > 0; " + s.name + " has " + fmt::format("{}", x));
        xr = {std::min(xr.lo, x), std::max(xr.hi, x)};
      }
    if (!std::isfinite(xr.lo)) xr = {1, 10};
  }
  const Frame f = frame(c, title, x_label, y_label, xr, data_range(series, false), {}, log_x);
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].points.empty()) continue;
    const auto [x, y] = series[i].points.front();
    error_bars(c, f, series[i], 0, palette(i));
    c.shapes.push_back({Shape::kCircle, f.px(x), f.py(y), 5, 0, palette(i), true, 1, ""});
  }
  legend(c, series);
  c.pgfplots = pgfplots_chart(title, x_label, y_label, f, series, {}, true);
  return c;
}

Canvas heatmap(const std::string& title, const std::vector<std::vector<std::optional<double>>>& matrix, double lo,
               double hi) {
  Canvas c;
  const size_t n = matrix.size();
  size_t m = 0;
  for (const auto& row : matrix) m = std::max(m, row.size());
  c.width = std::max(320, static_cast<int>(kLeft + 20 + 56 * m));
  c.height = static_cast<int>(kTop + kBottom + 36 * n);
  c.shapes.push_back(
      {Shape::kRect, 0, 0, static_cast<double>(c.width), static_cast<double>(c.height), {255, 255, 255}, true, 1, ""});
  text(c, 8, 22, title, 14);
  for (size_t i = 0; i < n; ++i) {
    text(c, 8, kTop + 36 * i + 22, fmt::format("after {}", i), 11);
    for (size_t j = 0; j < matrix[i].size(); ++j) {
      if (!matrix[i][j]) continue;
      const double v = *matrix[i][j];
      const double t = std::clamp((v - lo) / (hi - lo), 0.0, 1.0);
      // White (low) to blue (high).
      const Rgb color{static_cast<int>(255 - 224 * t), static_cast<int>(255 - 136 * t), static_cast<int>(255 - 75 * t)};
      const double x = kLeft + 56 * j, y = kTop + 36 * i;
      c.shapes.push_back({Shape::kRect, x, y, x + 54, y + 34, color, true, 1, ""});
      text(c, x + 8, y + 22, fmt::format("{:.1f}", v), 11, t > 0.6 ? Rgb{255, 255, 255} : kBlack);
    }
  }
  for (size_t j = 0; j < m; ++j) text(c, kLeft + 56 * j + 10, kTop + 36 * n + 16, fmt::format("task {}", j), 11);
  // pgfplots: each cell present as a square mark coloured by its value, white
  // to the same blue (mark size: restyle it to the figure's size).
  std::string cells;
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < matrix[i].size(); ++j)
      if (matrix[i][j]) cells += fmt::format("{} {} {:.6g}\n", j, i, *matrix[i][j]);
  c.pgfplots = "% " + latex(title) + ", written by sscl's tools/report; needs \\usepackage{pgfplots}\n" +
               "\\begin{tikzpicture}\n\\begin{axis}[title={" + latex(title) +
               "}, xlabel={task}, ylabel={after task}, y dir=reverse, enlargelimits=false, axis on top,\n" +
               fmt::format(
                   "  colormap={{sscl}}{{rgb255=(255,255,255) rgb255=(31,119,180)}}, point meta min={:.6g}, "
                   "point meta max={:.6g}, colorbar,\n",
                   lo, hi) +
               "  nodes near coords={\\pgfmathprintnumber[fixed,precision=1]{\\pgfplotspointmeta}}, "
               "nodes near coords align={center}]\n" +
               "\\addplot[scatter, only marks, mark=square*, mark size=12pt, scatter src=explicit] "
               "table[meta index=2] {\n" +
               cells + "};\n" + "\\end{axis}\n\\end{tikzpicture}\n";
  return c;
}

std::string to_svg(const Canvas& canvas) {
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
      "font-family=\"sans-serif\">\n",
      canvas.width, canvas.height, canvas.width, canvas.height);
  for (const auto& s : canvas.shapes) {
    switch (s.kind) {
      case Shape::kLine:
        out += fmt::format(
            "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
            "stroke-width=\"{}\"/>\n",
            s.x0, s.y0, s.x1, s.y1, hex(s.color), s.width);
        break;
      case Shape::kRect:
        out += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" {}=\"{}\"{}/>\n", s.x0,
                           s.y0, s.x1 - s.x0, s.y1 - s.y0, s.filled ? "fill" : "stroke", hex(s.color),
                           s.filled ? "" : " fill=\"none\"");
        break;
      case Shape::kCircle:
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{:.1f}\" fill=\"{}\"/>\n", s.x0, s.y0, s.x1,
                           hex(s.color));
        break;
      case Shape::kText:
        out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"{}\" fill=\"{}\">{}</text>\n", s.x0, s.y0, s.x1,
                           hex(s.color), escape_xml(s.text));
        break;
    }
  }
  return out + "</svg>\n";
}

void write_png(const Canvas& canvas, const std::filesystem::path& file) {
  cv::Mat image(canvas.height, canvas.width, CV_8UC3, cv::Scalar(255, 255, 255));
  auto bgr = [](Rgb c) { return cv::Scalar(c[2], c[1], c[0]); };
  auto pt = [](double x, double y) {
    return cv::Point(static_cast<int>(std::lround(x)), static_cast<int>(std::lround(y)));
  };
  for (const auto& s : canvas.shapes) {
    switch (s.kind) {
      case Shape::kLine:
        cv::line(image, pt(s.x0, s.y0), pt(s.x1, s.y1), bgr(s.color), std::max(1, static_cast<int>(s.width)),
                 cv::LINE_AA);
        break;
      case Shape::kRect:
        cv::rectangle(image, pt(s.x0, s.y0), pt(s.x1, s.y1), bgr(s.color), s.filled ? cv::FILLED : 1);
        break;
      case Shape::kCircle:
        cv::circle(image, pt(s.x0, s.y0), static_cast<int>(s.x1), bgr(s.color), cv::FILLED, cv::LINE_AA);
        break;
      case Shape::kText:
        cv::putText(image, ascii(s.text), pt(s.x0, s.y0), cv::FONT_HERSHEY_SIMPLEX, s.x1 / 30.0, bgr(s.color), 1,
                    cv::LINE_AA);
        break;
    }
  }
  if (!cv::imwrite(file.string(), image)) throw std::runtime_error(file.string() + ": cannot write the PNG");
}

}  // namespace sscl::report
