// The reports of janusdna evaluate: the readable table, the TSV rows and the JSON summary; see
// include/janusdna/evaluate.h.
#include "janusdna/evaluate.h"

#include "janusdna/metrics.h"

#include <cmath>
#include <fmt/format.h>

namespace janusdna {

nlohmann::json json_number(double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); }

std::string format_number(double x, int digits) { return std::isnan(x) ? "NA" : fmt::format("{:.{}f}", x, digits); }

nlohmann::json summary_json(const std::vector<MethodRuns>& methods) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& mr : methods)
        for (const auto& [metric, v] : mr.values) {
            MeanSd s = mean_sd(v);
            std::vector<nlohmann::json> vals;
            for (double x : v) vals.push_back(json_number(x));
            j[mr.name][metric] = {{"mean", json_number(s.mean)}, {"sd", json_number(s.sd)}, {"n", s.n}, {"values", vals}};
        }
    return j;
}

std::string EvalReport::table() const {
    std::string out;
    for (const auto& line : header) out += line + "\n";
    out += fmt::format("{:<36}{:>5}", "method", "runs");
    for (const auto& m : metrics) out += fmt::format("  {:>17}", m);
    out += "\n";
    for (const auto& mr : methods) {
        const size_t runs = mr.values.empty() ? 0 : mr.values.begin()->second.size();
        out += fmt::format("{:<36}{:>5}", mr.name, runs);
        for (const auto& m : metrics) {
            auto it = mr.values.find(m);
            MeanSd s = it == mr.values.end() ? MeanSd{} : mean_sd(it->second);
            out += fmt::format("  {:>17}", s.n == 0 ? "NA"
                                           : s.n == 1 ? format_number(s.mean)
                                                      : format_number(s.mean) + " ± " + format_number(s.sd));
        }
        out += "\n";
    }
    return out;
}

std::string EvalReport::tsv() const {
    std::string out = "method\trun\tmetric\tvalue\n";
    for (const auto& mr : methods)
        for (const auto& [metric, v] : mr.values) {
            for (size_t r = 0; r < v.size(); ++r)
                out += fmt::format("{}\t{}\t{}\t{}\n", mr.name, r + 1, metric, format_number(v[r], 6));
            MeanSd s = mean_sd(v);
            out += fmt::format("{}\tmean\t{}\t{}\n{}\tsd\t{}\t{}\n", mr.name, metric, format_number(s.mean, 6), mr.name,
                               metric, format_number(s.sd, 6));
        }
    return out;
}

} // namespace janusdna
