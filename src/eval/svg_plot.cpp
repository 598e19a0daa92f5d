// SVG writers for ROC curves and confusion matrices.
#include "janusdna/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "janusdna/error.h"

namespace janusdna {

namespace {

constexpr int kSize = 480;

std::string xml_escape(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&apos;"; break;
        default: out += c;
        }
    }
    return out;
}

// Coordinates with one decimal: sub-pixel precision is invisible and keeps large curves small.
std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

std::string svg_open(const std::string& title) {
    const std::string size = std::to_string(kSize);
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + size + "\" height=\"" + size +
           "\" viewBox=\"0 0 " + size + " " + size + "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
           "<title>" + xml_escape(title) + "</title>\n"
           "<rect x=\"0\" y=\"0\" width=\"" + size + "\" height=\"" + size + "\" fill=\"white\"/>\n"
           "<text x=\"" + std::to_string(kSize / 2) + "\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">" +
           xml_escape(title) + "</text>\n";
}

std::string text(double x, double y, const std::string& s, const std::string& attrs) {
    return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" " + attrs + ">" + xml_escape(s) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const std::string& attrs) {
    return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) + "\" " +
           attrs + "/>\n";
}

// Matplotlib's tab10 colours: distinguishable and familiar from other papers' figures.
const char* const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

} // namespace

std::string roc_svg(const std::vector<std::pair<std::string, Curve>>& curves, const std::string& title) {
    // Square plot area [x0, x1] x [y0, y1] in pixels; y grows downwards.
    const double x0 = 70, x1 = 440, y0 = 50, y1 = 420;
    auto px = [&](double v) { return x0 + v * (x1 - x0); };
    auto py = [&](double v) { return y1 - v * (y1 - y0); };

    std::string svg = svg_open(title);
    for (int i = 0; i <= 5; ++i) {
        const double v = i / 5.0;
        char label[8];
        std::snprintf(label, sizeof label, "%.1f", v);
        svg += line(px(v), y0, px(v), y1, "stroke=\"#e0e0e0\"");
        svg += line(x0, py(v), x1, py(v), "stroke=\"#e0e0e0\"");
        svg += line(px(v), y1, px(v), y1 + 5, "stroke=\"black\"");
        svg += line(x0 - 5, py(v), x0, py(v), "stroke=\"black\"");
        svg += text(px(v), y1 + 20, label, "font-size=\"12\" text-anchor=\"middle\"");
        svg += text(x0 - 9, py(v) + 4, label, "font-size=\"12\" text-anchor=\"end\"");
    }
    svg += "<rect x=\"" + num(x0) + "\" y=\"" + num(y0) + "\" width=\"" + num(x1 - x0) + "\" height=\"" +
           num(y1 - y0) + "\" fill=\"none\" stroke=\"black\"/>\n";
    svg += text((x0 + x1) / 2, y1 + 45, "False positive rate (FPR)", "font-size=\"14\" text-anchor=\"middle\"");
    svg += "<text x=\"0\" y=\"0\" font-size=\"14\" text-anchor=\"middle\" transform=\"translate(22," +
           num((y0 + y1) / 2) + ") rotate(-90)\">True positive rate (TPR)</text>\n";
    svg += line(px(0), py(0), px(1), py(1), "stroke=\"#999999\" stroke-dasharray=\"6,4\"");  // chance

    for (size_t c = 0; c < curves.size(); ++c) {
        const Curve& curve = curves[c].second;
        if (curve.x.size() != curve.y.size())
            throw Error("ROC plot: curve '" + curves[c].first + "' has " + std::to_string(curve.x.size()) +
                        " x values but " + std::to_string(curve.y.size()) + " y values");
        std::string points, last;
        for (size_t i = 0; i < curve.x.size(); ++i) {
            if (std::isnan(curve.x[i]) || std::isnan(curve.y[i])) continue;
            const std::string p = num(px(std::clamp(curve.x[i], 0.0, 1.0))) + "," +
                                  num(py(std::clamp(curve.y[i], 0.0, 1.0)));
            if (p == last) continue;  // thousands of thresholds collapse onto a few hundred pixels
            points += (points.empty() ? "" : " ") + p;
            last = p;
        }
        if (points.empty()) continue;
        svg += "<polyline fill=\"none\" stroke=\"" + std::string(kColours[c % 10]) +
               "\" stroke-width=\"2\" points=\"" + points + "\"/>\n";
    }

    // Legend in the lower right, where ROC curves rarely go.
    if (!curves.empty()) {
        size_t longest = 0;
        for (const auto& named : curves) longest = std::max(longest, named.first.size());
        const double row = 18, width = std::min(x1 - x0 - 10, 36 + 7.0 * static_cast<double>(longest));
        const double height = row * static_cast<double>(curves.size()) + 8;
        const double lx = x1 - 8 - width, ly = y1 - 8 - height;
        svg += "<rect x=\"" + num(lx) + "\" y=\"" + num(ly) + "\" width=\"" + num(width) + "\" height=\"" +
               num(height) + "\" fill=\"white\" fill-opacity=\"0.9\" stroke=\"#999999\"/>\n";
        for (size_t c = 0; c < curves.size(); ++c) {
            const double y = ly + 4 + row * (static_cast<double>(c) + 0.5);
            svg += line(lx + 6, y, lx + 26, y, "stroke=\"" + std::string(kColours[c % 10]) + "\" stroke-width=\"2\"");
            svg += text(lx + 32, y + 4, curves[c].first, "font-size=\"12\"");
        }
    }
    return svg + "</svg>\n";
}

std::string confusion_svg(const ConfusionMatrix& cm, const std::vector<std::string>& class_names,
                          const std::string& title) {
    const int n = cm.n_classes;
    if (!class_names.empty() && class_names.size() != static_cast<size_t>(n))
        throw Error("confusion matrix plot: " + std::to_string(class_names.size()) + " class names for " +
                    std::to_string(n) + " classes");
    auto name = [&](int c) { return class_names.empty() ? std::to_string(c) : class_names[c]; };

    const double gx = 120, gy = 60, grid = 330;  // the grid's top-left corner and side
    const double cell = n > 0 ? grid / n : grid;
    const double font = std::max(7.0, std::min(14.0, cell / 3));
    std::string svg = svg_open(title);
    for (int t = 0; t < n; ++t) {
        int64_t row_total = 0;
        for (int p = 0; p < n; ++p) row_total += cm.at(t, p);
        for (int p = 0; p < n; ++p) {
            const int64_t count = cm.at(t, p);
            const double frac = row_total ? static_cast<double>(count) / static_cast<double>(row_total) : 0.0;
            // White to dark blue (#08519c) by the row fraction.
            char fill[8];
            std::snprintf(fill, sizeof fill, "#%02x%02x%02x", static_cast<int>(std::lround(255 - frac * (255 - 8))),
                          static_cast<int>(std::lround(255 - frac * (255 - 81))),
                          static_cast<int>(std::lround(255 - frac * (255 - 156))));
            const double x = gx + p * cell, y = gy + t * cell;
            svg += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(cell) + "\" height=\"" +
                   num(cell) + "\" fill=\"" + fill + "\" stroke=\"#cccccc\"/>\n";
            svg += text(x + cell / 2, y + cell / 2 + font / 3, std::to_string(count),
                        "font-size=\"" + num(font) + "\" text-anchor=\"middle\" fill=\"" +
                            (frac > 0.5 ? "white" : "black") + "\"");
        }
    }
    const double label_font = std::max(7.0, std::min(12.0, cell / 2));
    for (int c = 0; c < n; ++c) {
        const double mid = c * cell + cell / 2;
        svg += text(gx - 6, gy + mid + label_font / 3, name(c),
                    "font-size=\"" + num(label_font) + "\" text-anchor=\"end\"");
        svg += text(gx + mid, gy + grid + 16, name(c), "font-size=\"" + num(label_font) + "\" text-anchor=\"middle\"");
    }
    svg += text(gx + grid / 2, gy + grid + 44, "Predicted", "font-size=\"14\" text-anchor=\"middle\"");
    svg += text(gx + grid / 2, gy + grid + 66, "shade: fraction of the true class's examples",
                "font-size=\"11\" text-anchor=\"middle\" fill=\"#666666\"");
    svg += "<text x=\"0\" y=\"0\" font-size=\"14\" text-anchor=\"middle\" transform=\"translate(22," +
           num(gy + grid / 2) + ") rotate(-90)\">True</text>\n";
    return svg + "</svg>\n";
}

} // namespace janusdna
