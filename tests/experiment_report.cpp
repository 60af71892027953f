// grpo report: metric series from metrics.jsonl, SVG charts (well-formed XML, points where the layout
// formula puts them, worked out by hand below), the HTML page and the files it writes.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "rl/experiment/report.h"

using namespace grpo;
namespace fs = std::filesystem;

namespace {

// A small XML well-formedness check, written for these tests: every element closed in order, attribute
// values quoted, no raw '<' or stray '&' in text or attributes. Returns "" or the first problem.
std::string xml_problem(const std::string& xml) {
  std::vector<std::string> open;
  auto entity_ok = [&](size_t at) {
    for (const char* e : {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"})
      if (xml.compare(at, std::strlen(e), e) == 0) return true;
    return false;
  };
  size_t i = 0, roots = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      if (!entity_ok(i)) return "bad entity at " + std::to_string(i);
      ++i;
      continue;
    }
    if (xml[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(xml[i]))) return "text outside the root";
      ++i;
      continue;
    }
    if (xml.compare(i, 2, "</") == 0) {
      size_t end = xml.find('>', i);
      if (end == std::string::npos) return "unterminated closing tag";
      std::string name = xml.substr(i + 2, end - i - 2);
      if (open.empty() || open.back() != name) return "closing </" + name + "> does not match";
      open.pop_back();
      i = end + 1;
      continue;
    }
    size_t j = i + 1;
    while (j < xml.size() && (std::isalnum(static_cast<unsigned char>(xml[j])) || xml[j] == '-' || xml[j] == ':')) ++j;
    std::string name = xml.substr(i + 1, j - i - 1);
    if (name.empty()) return "tag without a name at " + std::to_string(i);
    if (open.empty() && ++roots > 1) return "more than one root element";
    for (;;) {  // attributes
      while (j < xml.size() && std::isspace(static_cast<unsigned char>(xml[j]))) ++j;
      if (j >= xml.size()) return "unterminated tag <" + name;
      if (xml[j] == '>') {
        open.push_back(name);
        ++j;
        break;
      }
      if (xml.compare(j, 2, "/>") == 0) {
        j += 2;
        break;
      }
      size_t eq = xml.find('=', j);
      if (eq == std::string::npos || xml[eq + 1] != '"') return "unquoted attribute in <" + name;
      size_t close = xml.find('"', eq + 2);
      if (close == std::string::npos) return "unterminated attribute in <" + name;
      for (size_t k = eq + 2; k < close; ++k) {
        if (xml[k] == '<') return "raw '<' in an attribute of <" + name;
        if (xml[k] == '&' && !entity_ok(k)) return "bad entity in an attribute of <" + name;
      }
      j = close + 1;
    }
    i = j;
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  return roots == 1 ? "" : "no root element";
}

// The "points" attribute of the first <polyline class="CLASS">, as (x, y) pairs.
std::vector<std::pair<double, double>> polyline(const std::string& svg, const std::string& cls) {
  size_t at = svg.find("<polyline class=\"" + cls + "\"");
  REQUIRE(at != std::string::npos);
  size_t begin = svg.find("points=\"", at) + 8, end = svg.find('"', begin);
  std::vector<std::pair<double, double>> out;
  std::string text = svg.substr(begin, end - begin);
  const char* p = text.c_str();
  char* next = nullptr;
  while (*p) {
    double x = std::strtod(p, &next);
    REQUIRE(*next == ',');
    double y = std::strtod(next + 1, &next);
    out.emplace_back(x, y);
    p = next;
    while (*p == ' ') ++p;
  }
  return out;
}

fs::path temp_dir(const char* name) {
  fs::path dir = fs::temp_directory_path() / (std::string("grpo_report_") + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_text_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("the test's own XML check rejects what it should") {
  CHECK(xml_problem("<svg><a x=\"1\"/></svg>").empty());
  CHECK_FALSE(xml_problem("<svg><a></svg>").empty());
  CHECK_FALSE(xml_problem("<svg><a x=1/></svg>").empty());
  CHECK_FALSE(xml_problem("<svg>a & b</svg>").empty());
  CHECK_FALSE(xml_problem("<svg></svg><svg></svg>").empty());
}

TEST_CASE("metric series: x from the step field, else the line index; non-numeric values skipped") {
  fs::path dir = temp_dir("series");
  write_text_file(dir / "a.jsonl", "{\"step\": 10, \"reward\": 0.5, \"note\": \"x\"}\n\n{\"step\": 20, \"reward\": 0.75, \"kl\": 0.01}\n");
  std::vector<MetricSeries> s = read_metric_series((dir / "a.jsonl").string());
  REQUIRE(s.size() == 2);
  CHECK(s[0].name == "reward");
  CHECK(s[0].x == std::vector<double>{10, 20});
  CHECK(s[0].y == std::vector<double>{0.5, 0.75});
  CHECK(s[1].name == "kl");
  CHECK(s[1].x == std::vector<double>{20});
  write_text_file(dir / "b.jsonl", "{\"loss\": 3}\n{\"loss\": 2}\n{\"loss\": 1}\n");
  CHECK(read_metric_series((dir / "b.jsonl").string())[0].x == std::vector<double>{0, 1, 2});
  write_text_file(dir / "bad.jsonl", "{\"loss\": 3}\n{\"loss\": \n");
  CHECK_THROWS_WITH_AS(read_metric_series((dir / "bad.jsonl").string()),
                       doctest::Contains("bad.jsonl:2: invalid JSON"), std::runtime_error);
  fs::remove_all(dir);
}

TEST_CASE("SVG chart: well-formed, and the polyline points are where the layout puts the values") {
  MetricSeries s{"reward", {0, 1, 2, 3}, {0.0, 0.5, 0.25, 1.0}};
  std::string svg = render_svg(s);
  CHECK(xml_problem(svg) == "");
  // Default layout: plot area x 64..464 (400 px), y 32..204 (172 px); data range x 0..3, y 0..1.
  auto p = polyline(svg, "data");
  REQUIRE(p.size() == 4);
  CHECK(p[0].first == doctest::Approx(64.0));
  CHECK(p[0].second == doctest::Approx(204.0));  // y = 0 at the bottom
  CHECK(p[1].first == doctest::Approx(197.33).epsilon(1e-4));  // 64 + 400/3
  CHECK(p[1].second == doctest::Approx(118.0));  // 32 + 172/2
  CHECK(p[2].first == doctest::Approx(330.67).epsilon(1e-4));
  CHECK(p[2].second == doctest::Approx(161.0));  // 32 + 0.75 * 172
  CHECK(p[3].first == doctest::Approx(464.0));
  CHECK(p[3].second == doctest::Approx(32.0));  // the maximum at the top
  CHECK(svg.find("class=\"smoothed\"") == std::string::npos);  // fewer than 20 points
}

TEST_CASE("SVG chart: a custom layout, a flat series in the middle, NaN left out, names escaped") {
  ChartLayout layout{200, 100, 10, 10, 10, 10};  // plot area 180 x 80
  MetricSeries s{"a<b>&c", {5, 6, 7}, {2.0, std::nan(""), 2.0}};
  std::string svg = render_svg(s, layout);
  CHECK(xml_problem(svg) == "");
  CHECK(svg.find("a&lt;b&gt;&amp;c") != std::string::npos);
  auto p = polyline(svg, "data");
  REQUIRE(p.size() == 2);
  CHECK(p[0] == std::pair<double, double>{10.0, 50.0});   // y range 1..3: 2 sits in the middle
  CHECK(p[1] == std::pair<double, double>{190.0, 50.0});  // x range 5..7 (the NaN point at 6 is gone)
  MetricSeries empty{"x", {0}, {std::nan("")}};
  CHECK_THROWS_AS(render_svg(empty), std::invalid_argument);
}

TEST_CASE("SVG chart: from 20 points an exponential moving average is drawn too") {
  MetricSeries s{"reward", {}, {}};
  for (int i = 0; i < 20; ++i) {
    s.x.push_back(i);
    s.y.push_back(i % 2);  // 0, 1, 0, 1, ...
  }
  std::string svg = render_svg(s);
  CHECK(xml_problem(svg) == "");
  auto smooth = polyline(svg, "smoothed");
  REQUIRE(smooth.size() == 20);
  // Bias-corrected EMA with weight 0.9 after the values 0, 1: (0.9·0.1·0 + 0.1·1) / (1 − 0.81) = 0.5263.
  double ema = 0;
  for (int i = 0; i < 2; ++i) ema = 0.9 * ema + 0.1 * (i % 2);
  double value = ema / (1 - 0.81);
  CHECK(value == doctest::Approx(0.526316).epsilon(1e-5));
  CHECK(smooth[1].second == doctest::Approx(32 + (1 - value) * 172).epsilon(1e-4));
}

TEST_CASE("report of a run directory: the stages' metrics files, an HTML page with the charts inline, SVG files") {
  fs::path run = temp_dir("run");
  write_text_file(run / "train" / "metrics.jsonl",
             "{\"step\": 0, \"reward\": 0.1, \"accuracy\": 0.0, \"kl\": 0.0, \"completion_length/mean\": 12.5, \"grad_norm\": 1}\n"
             "{\"step\": 1, \"reward\": 0.4, \"accuracy\": 0.25, \"kl\": 0.002, \"completion_length/mean\": 10.0, \"grad_norm\": 2}\n");
  write_text_file(run / "sft" / "metrics.jsonl", "{\"step\": 0, \"loss\": 2.5}\n{\"step\": 1, \"loss\": 1.5}\n");
  write_text_file(run / "init" / "config.json", "{}");
  std::vector<ReportSection> sections = collect_report(run.string());
  REQUIRE(sections.size() == 2);
  CHECK(sections[0].title == "sft");
  CHECK(sections[1].title == "train");
  std::vector<std::string> names;
  for (const MetricSeries& m : sections[1].series) names.push_back(m.name);
  CHECK(names == std::vector<std::string>{"reward", "accuracy", "completion_length/mean", "kl"});  // no grad_norm

  ReportFiles files = write_report(run.string(), (run / "report").string());
  CHECK(files.svgs.size() == 5);
  CHECK(fs::exists(run / "report" / "train_completion_length_mean.svg"));
  std::ifstream in(files.html);
  std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(html.find("<script") == std::string::npos);
  size_t charts = 0, links = 0;
  for (size_t at = html.find("http"); at != std::string::npos; at = html.find("http", at + 1)) ++links;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    ++charts;
    CHECK(xml_problem(html.substr(at, html.find("</svg>", at) + 6 - at)) == "");
  }
  CHECK(charts == 5);
  CHECK(links == charts);  // nothing fetched: the only URLs are the SVG namespace names
  CHECK(html.find("<td>reward</td><td>0.1</td><td>0.4</td>") != std::string::npos);
  CHECK_THROWS_WITH_AS(collect_report((run / "init").string()), doctest::Contains("no metrics.jsonl"), std::runtime_error);
  fs::remove_all(run);
}

TEST_CASE("report: every rule's mean is drawn after the fixed charts, its failure counts are not") {
  fs::path run = temp_dir("rules_run");
  write_text_file(run / "train" / "metrics.jsonl",
                  "{\"step\": 1, \"reward\": 0.1, \"rewards/accuracy\": 0.0, \"rewards/verification\": 0.3, "
                  "\"rewards/verification/failures\": 0, \"rewards/verification/failure_rate\": 0}\n"
                  "{\"step\": 2, \"reward\": 0.4, \"rewards/accuracy\": 0.5, \"rewards/verification\": 0.6, "
                  "\"rewards/verification/failures\": 1, \"rewards/verification/failure_rate\": 0.1}\n");
  std::vector<ReportSection> sections = collect_report(run.string());
  REQUIRE(sections.size() == 1);
  std::vector<std::string> names;
  for (const MetricSeries& m : sections[0].series) names.push_back(m.name);
  CHECK(names == std::vector<std::string>{"reward", "rewards/accuracy", "rewards/verification"});
  fs::remove_all(run);
}
