#include "rl/experiment/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace grpo {

namespace {

namespace fs = std::filesystem;

// Text inside SVG/HTML elements and attribute values.
std::string escape_xml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string label(double v) {
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-3)) return fmt::format("{:.3e}", v);
  return fmt::format("{:.4g}", v);
}

// Widens a degenerate [lo, hi] so the point sits in the middle.
void widen(double& lo, double& hi) {
  if (hi > lo) return;
  const double half = std::max(0.5, 0.5 * std::fabs(lo));
  lo -= half;
  hi += half;
}

std::string file_name_of(const std::string& name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return out;
}

}  // namespace

std::vector<MetricSeries> read_metric_series(const std::string& metrics_jsonl) {
  std::ifstream in(metrics_jsonl);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open", metrics_jsonl));
  std::vector<MetricSeries> series;
  std::map<std::string, size_t> index;
  std::string text;
  int64_t line_number = 0, record = 0;
  while (std::getline(in, text)) {
    ++line_number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json line;
    try {
      line = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(fmt::format("{}:{}: invalid JSON: {}", metrics_jsonl, line_number, e.what()));
    }
    if (!line.is_object()) throw std::runtime_error(fmt::format("{}:{}: expected a JSON object", metrics_jsonl, line_number));
    const double x = line.contains("step") && line["step"].is_number() ? line["step"].get<double>() : static_cast<double>(record);
    ++record;
    for (auto it = line.begin(); it != line.end(); ++it) {
      if (it.key() == "step" || !it.value().is_number()) continue;
      auto [pos, added] = index.emplace(it.key(), series.size());
      if (added) series.push_back({it.key(), {}, {}});
      series[pos->second].x.push_back(x);
      series[pos->second].y.push_back(it.value().get<double>());
    }
  }
  return series;
}

const std::vector<std::vector<std::string>>& report_metric_names() {
  static const std::vector<std::vector<std::string>> names = {
      {"reward"}, {"accuracy", "rewards/accuracy"}, {"completion_length/mean", "completion_length"},
      {"kl"}, {"entropy"}, {"loss"},
      // grpo.distill (docs/distillation.md): per-token KL to the teacher, log-prob gap, argmax agreement.
      {"distill/kl"}, {"distill/reverse_kl"}, {"distill/logprob_gap"}, {"distill/argmax_agreement"}};
  return names;
}

AxisRange chart_range(const MetricSeries& series) {
  AxisRange r;
  bool any = false;
  for (size_t i = 0; i < series.y.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
    if (!any) {
      r = {series.x[i], series.x[i], series.y[i], series.y[i]};
      any = true;
    }
    r.x_min = std::min(r.x_min, series.x[i]);
    r.x_max = std::max(r.x_max, series.x[i]);
    r.y_min = std::min(r.y_min, series.y[i]);
    r.y_max = std::max(r.y_max, series.y[i]);
  }
  if (!any) throw std::invalid_argument(fmt::format("metric \"{}\" has no finite value to draw", series.name));
  widen(r.x_min, r.x_max);
  widen(r.y_min, r.y_max);
  return r;
}

std::string render_svg(const MetricSeries& series, const ChartLayout& layout) {
  const AxisRange r = chart_range(series);
  const double plot_w = layout.width - layout.left - layout.right;
  const double plot_h = layout.height - layout.top - layout.bottom;
  auto px = [&](double x) { return layout.left + (x - r.x_min) / (r.x_max - r.x_min) * plot_w; };
  auto py = [&](double y) { return layout.top + (r.y_max - y) / (r.y_max - r.y_min) * plot_h; };

  std::string points, smoothed;
  double ema = 0;
  size_t drawn = 0;
  for (size_t i = 0; i < series.y.size(); ++i) {
    if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
    // Bias-corrected like Adam's moments, so the curve starts at the first value rather than near 0.
    ema = 0.9 * ema + 0.1 * series.y[i];
    const double corrected = ema / (1.0 - std::pow(0.9, static_cast<double>(++drawn)));
    if (!points.empty()) points += ' ', smoothed += ' ';
    points += fmt::format("{:.2f},{:.2f}", px(series.x[i]), py(series.y[i]));
    smoothed += fmt::format("{:.2f},{:.2f}", px(series.x[i]), py(corrected));
  }
  const std::string name = escape_xml(series.name);
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n"
      "<title>{2}</title>\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<rect x=\"{3}\" y=\"{4}\" width=\"{5}\" height=\"{6}\" fill=\"none\" stroke=\"#999\"/>\n"
      "<text x=\"{3}\" y=\"{7}\" font-size=\"13\" font-weight=\"bold\">{2}</text>\n",
      layout.width, layout.height, name, layout.left, layout.top, plot_w, plot_h, layout.top - 10);
  // Axis labels: y max at the top, y min at the bottom, x min/max under the plot's corners.
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", layout.left - 4, layout.top + 4, label(r.y_max));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", layout.left - 4, layout.top + plot_h,
                     label(r.y_min));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"start\">{}</text>\n", layout.left, layout.top + plot_h + 14,
                     label(r.x_min));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", layout.left + plot_w, layout.top + plot_h + 14,
                     label(r.x_max));
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">step</text>\n", layout.left + plot_w / 2,
                     layout.top + plot_h + 28);
  const bool smooth = drawn >= 20;
  svg += fmt::format("<polyline class=\"data\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                     smooth ? "#9ecae1" : "#1f77b4", points);
  if (smooth)
    svg += fmt::format("<polyline class=\"smoothed\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>\n",
                       smoothed);
  svg += "</svg>\n";
  return svg;
}

std::vector<ReportSection> collect_report(const std::string& run_dir) {
  if (!fs::is_directory(run_dir)) throw std::runtime_error(fmt::format("{}: not a run directory", run_dir));
  std::vector<fs::path> files;
  if (fs::exists(fs::path(run_dir) / "metrics.jsonl")) files.push_back(fs::path(run_dir) / "metrics.jsonl");
  std::vector<fs::path> stages;
  for (const fs::directory_entry& e : fs::directory_iterator(run_dir))
    if (e.is_directory() && fs::exists(e.path() / "metrics.jsonl")) stages.push_back(e.path());
  std::sort(stages.begin(), stages.end());
  for (const fs::path& s : stages) files.push_back(s / "metrics.jsonl");
  if (files.empty()) throw std::runtime_error(fmt::format("{}: no metrics.jsonl in it or in its stage directories", run_dir));

  std::vector<ReportSection> sections;
  for (const fs::path& f : files) {
    ReportSection section;
    section.source = f.string();
    section.title = fs::relative(f.parent_path(), run_dir).string();
    std::vector<MetricSeries> all = read_metric_series(f.string());
    for (const std::vector<std::string>& accepted : report_metric_names())
      for (const std::string& name : accepted) {
        auto it = std::find_if(all.begin(), all.end(), [&](const MetricSeries& s) { return s.name == name; });
        if (it == all.end()) continue;
        if (std::any_of(it->y.begin(), it->y.end(), [](double v) { return std::isfinite(v); })) section.series.push_back(*it);
        break;
      }
    for (const MetricSeries& s : all) {
      const bool rule_mean = s.name.rfind("rewards/", 0) == 0 && s.name.find('/', 8) == std::string::npos;
      const bool drawn = std::any_of(section.series.begin(), section.series.end(), [&](const MetricSeries& d) { return d.name == s.name; });
      if (rule_mean && !drawn && std::any_of(s.y.begin(), s.y.end(), [](double v) { return std::isfinite(v); }))
        section.series.push_back(s);
    }
    sections.push_back(std::move(section));
  }
  return sections;
}

std::string render_html(const std::string& title, const std::vector<ReportSection>& sections) {
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{0}</title>\n<style>\n"
      "body {{ font-family: sans-serif; margin: 2em; color: #222; }}\n"
      "table {{ border-collapse: collapse; margin: 0.5em 0 1em; }}\n"
      "td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}\n"
      "td:first-child, th:first-child {{ text-align: left; }}\n"
      ".charts svg {{ margin: 0 12px 12px 0; border: 1px solid #eee; }}\n"
      "</style>\n</head>\n<body>\n<h1>{0}</h1>\n",
      escape_xml(title));
  for (const ReportSection& s : sections) {
    html += fmt::format("<h2>{}</h2>\n<p>{}</p>\n", escape_xml(s.title), escape_xml(s.source));
    if (s.series.empty()) {
      html += "<p>No reward, accuracy, length, KL, entropy or loss metric in this file.</p>\n";
      continue;
    }
    html += "<table>\n<tr><th>metric</th><th>first</th><th>last</th><th>min</th><th>max</th><th>points</th></tr>\n";
    for (const MetricSeries& m : s.series) {
      std::vector<double> finite;
      for (double v : m.y)
        if (std::isfinite(v)) finite.push_back(v);
      html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                          escape_xml(m.name), label(finite.front()), label(finite.back()),
                          label(*std::min_element(finite.begin(), finite.end())),
                          label(*std::max_element(finite.begin(), finite.end())), finite.size());
    }
    html += "</table>\n<div class=\"charts\">\n";
    for (const MetricSeries& m : s.series) html += render_svg(m);
    html += "</div>\n";
  }
  html += "</body>\n</html>\n";
  return html;
}

ReportFiles write_report(const std::string& run_dir, const std::string& out_dir) {
  std::vector<ReportSection> sections = collect_report(run_dir);
  fs::create_directories(out_dir);
  auto write = [](const fs::path& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    if (!out) throw std::runtime_error(fmt::format("{}: cannot write", path.string()));
  };
  ReportFiles files;
  for (const ReportSection& s : sections)
    for (const MetricSeries& m : s.series) {
      const std::string stem = s.title == "." ? "run" : s.title;
      fs::path path = fs::path(out_dir) / (file_name_of(stem) + "_" + file_name_of(m.name) + ".svg");
      write(path, render_svg(m));
      files.svgs.push_back(path.string());
    }
  const std::string title = "grpo report: " + fs::path(run_dir).lexically_normal().filename().string();
  files.html = (fs::path(out_dir) / "report.html").string();
  write(files.html, render_html(title, sections));
  return files;
}

}  // namespace grpo
