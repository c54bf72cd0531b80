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

Range padded_range(const std::vector<Series>& series, bool x) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const auto& s : series)
    for (const auto& [px, py] : s.points) {
      const double v = x ? px : py;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (!std::isfinite(lo)) return {0, 1};
  if (hi - lo < 1e-9) return {lo - 1, hi + 1};
  const double pad = 0.05 * (hi - lo);
  return {lo - pad, hi + pad};
}

// Axes, grid, ticks and titles; returns the mapping of data to pixels.
struct Frame {
  Range xr, yr;
  double w, h;
  double px(double x) const { return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * (w - kLeft - kRight); }
  double py(double y) const { return h - kBottom - (y - yr.lo) / (yr.hi - yr.lo) * (h - kTop - kBottom); }
};

Frame frame(Canvas& c, const std::string& title, const std::string& x_label, const std::string& y_label, Range xr,
            Range yr, const std::vector<std::string>& x_labels) {
  Frame f{xr, yr, static_cast<double>(c.width), static_cast<double>(c.height)};
  c.shapes.push_back({Shape::kRect, 0, 0, f.w, f.h, {255, 255, 255}, true, 1, ""});
  text(c, kLeft, 20, title, 14);
  for (int i = 0; i <= 4; ++i) {  // y grid and ticks
    const double v = yr.lo + (yr.hi - yr.lo) * i / 4;
    line(c, kLeft, f.py(v), f.w - kRight, f.py(v), kGrey);
    text(c, 8, f.py(v) + 4, fmt::format("{:.4g}", v), 11);
  }
  if (!x_labels.empty()) {
    for (size_t i = 0; i < x_labels.size(); ++i)
      text(c, f.px(static_cast<double>(i)) - 4, f.h - kBottom + 16, x_labels[i], 11);
  } else {
    for (int i = 0; i <= 4; ++i) {
      const double v = xr.lo + (xr.hi - xr.lo) * i / 4;
      text(c, f.px(v) - 10, f.h - kBottom + 16, fmt::format("{:.4g}", v), 11);
    }
  }
  line(c, kLeft, f.h - kBottom, f.w - kRight, f.h - kBottom, kBlack);
  line(c, kLeft, kTop, kLeft, f.h - kBottom, kBlack);
  text(c, (kLeft + f.w - kRight) / 2 - 30, f.h - 10, x_label, 12);
  text(c, 8, kTop - 10, y_label, 11);
  return f;
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

Canvas line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                  const std::vector<Series>& series, const std::vector<std::string>& x_labels) {
  Canvas c;
  Range xr = padded_range(series, true);
  if (!x_labels.empty()) xr = {-0.3, static_cast<double>(x_labels.size()) - 0.7};
  const Frame f = frame(c, title, x_label, y_label, xr, padded_range(series, false), x_labels);
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& pts = series[i].points;
    for (size_t k = 0; k + 1 < pts.size(); ++k)
      line(c, f.px(pts[k].first), f.py(pts[k].second), f.px(pts[k + 1].first), f.py(pts[k + 1].second), palette(i), 2);
    for (const auto& [x, y] : pts)
      c.shapes.push_back({Shape::kCircle, f.px(x), f.py(y), 3, 0, palette(i), true, 1, ""});
  }
  legend(c, series);
  return c;
}

Canvas scatter_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                     const std::vector<Series>& series) {
  Canvas c;
  const Frame f = frame(c, title, x_label, y_label, padded_range(series, true), padded_range(series, false), {});
  for (size_t i = 0; i < series.size(); ++i) {
    if (series[i].points.empty()) continue;
    const auto [x, y] = series[i].points.front();
    c.shapes.push_back({Shape::kCircle, f.px(x), f.py(y), 5, 0, palette(i), true, 1, ""});
  }
  legend(c, series);
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
