#pragma once
// `grpo report RUN_DIR`: metric curves of a run as SVG images and one self-contained HTML page (the SVGs
// inline, no scripts, no network), so a user looks at a run rather than reads its JSONL.
//
// A chart maps the data's own range onto the plot area of a ChartLayout:
//   x_px = left + (x − x_min) / (x_max − x_min) · (width − left − right)
//   y_px = top  + (y_max − y) / (y_max − y_min) · (height − top − bottom)
// A flat series (y_min == y_max) is drawn in the middle: the range becomes y ± 0.5 (± 0.5·|y| when
// larger); a single point, x ± 0.5 likewise. Non-finite values are left out.
#include <string>
#include <vector>

namespace grpo {

struct MetricSeries {
  std::string name;
  std::vector<double> x, y;  // x: the line's "step" field, else its 0-based line index
};

// One series per key with a numeric value on some line, in first-seen order ("step" is the x axis, not
// a series). Throws std::runtime_error naming file and line for an unreadable file or an invalid line.
std::vector<MetricSeries> read_metric_series(const std::string& metrics_jsonl);

// The metrics a report draws, in order, when they exist: reward, accuracy, completion length, KL,
// entropy (GRPO), loss (pretraining, SFT), distillation's. Each entry lists accepted names, first match
// wins. After them, every other rule's mean, `rewards/<rule>` (a weight-0 rule logs a share this way:
// the R1 example's verification steps).
const std::vector<std::vector<std::string>>& report_metric_names();

struct ChartLayout {
  double width = 480, height = 240;
  double left = 64, right = 16, top = 32, bottom = 36;
};

struct AxisRange {
  double x_min = 0, x_max = 1, y_min = 0, y_max = 1;
};
// The range a chart of `series` uses (see the header comment). Throws std::invalid_argument when it has
// no finite point.
AxisRange chart_range(const MetricSeries& series);

// A standalone SVG document: frame, title, min/max labels on both axes, the data as one
// <polyline class="data"> (points "x,y" with two decimals, in data order) and, from 20 points on, an
// exponential moving average (weight 0.9) as <polyline class="smoothed">.
std::string render_svg(const MetricSeries& series, const ChartLayout& layout = {});

// One stage's metrics file and the series a report draws from it.
struct ReportSection {
  std::string title;   // the stage directory, relative to the run directory ("train", "." for the run's own)
  std::string source;  // the metrics.jsonl path
  std::vector<MetricSeries> series;
};

// Sections for RUN_DIR/metrics.jsonl and every RUN_DIR/*/metrics.jsonl, sorted by directory name.
// Throws std::runtime_error when RUN_DIR is not a directory or holds no metrics.jsonl.
std::vector<ReportSection> collect_report(const std::string& run_dir);

// The HTML page: a heading, then per section a table (first, last, min, max of each drawn metric) and
// its charts inline.
std::string render_html(const std::string& title, const std::vector<ReportSection>& sections);

struct ReportFiles {
  std::string html;
  std::vector<std::string> svgs;
};
// Writes OUT_DIR/report.html and OUT_DIR/<section>_<metric>.svg ('/' in names becomes '_'). Throws
// std::runtime_error when a file cannot be written.
ReportFiles write_report(const std::string& run_dir, const std::string& out_dir);

}  // namespace grpo
