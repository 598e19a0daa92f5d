// Dependency-free SVG figures for the evaluation reports: ROC curves and confusion matrices. Each writer returns
// a complete standalone SVG 1.1 document (480 x 480 px); all text is XML-escaped.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "janusdna/metrics.h"

namespace janusdna {

// ROC curves on [0,1] x [0,1] (x = false-positive rate, y = true-positive rate) with ticks, the diagonal chance
// line, one coloured polyline per curve that has points (NaN points are skipped) and a legend with each name
// (callers put the AUROC in it, e.g. "JanusDNA (AUROC 0.87)"). Throws Error when a curve's x and y differ in
// length.
std::string roc_svg(const std::vector<std::pair<std::string, Curve>>& curves, const std::string& title);

// The confusion matrix as a heat map: truth in rows, predictions in columns, the count written in each cell and
// the shade giving the count as a fraction of its row (so that small classes are as readable as large ones).
// class_names labels the rows and columns (empty: "0", "1", ...). Throws Error when class_names is neither empty
// nor one name per class.
std::string confusion_svg(const ConfusionMatrix& cm, const std::vector<std::string>& class_names,
                          const std::string& title);

} // namespace janusdna
