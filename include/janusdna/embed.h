// Embeddings of genomic regions: the window plan, the runner and pooling wired together, streaming results to a
// sink in input order. Memory is bounded by window x batch (plus one FASTA record in --records mode), independent
// of region length: bases are fetched window by window and each base's row is handed on as soon as the window
// that owns it has run.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "janusdna/fasta.h"
#include "janusdna/model.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"
#include "janusdna/runner.h"
#include "janusdna/window_plan.h"

namespace janusdna {

enum class Pooling { None, Mean };

struct EmbedOptions {
    int64_t window = 1024; // W: model window; 0 = one pass over region + flanks
    int64_t stride = 0;    // S: 0 = default_stride(W) = 3W/4
    int64_t flank = 128;   // F: context bases added on each side (clipped at contig ends), dropped after the pass;
                           // with --window 0 and pooled tiling only (per-base tiling takes its context from the grid)
    int64_t batch = 8;     // model inputs per forward pass (with rc, each window is two inputs)
    bool rc = false;       // average the forward and the reverse-complement pass, position by position
    Pooling pool = Pooling::None;
};

// The default flank: W/8 (W = window, or the training length when window is 0).
int64_t default_flank(int64_t window, int64_t train_length);
// The default stride of tiled windows: 3W/4 (each base computed 4/3 times; every owned base has at least W/8 bases
// of context on each side). See docs/PERFORMANCE.md for the trade-off.
int64_t default_stride(int64_t window);

// Which windows are read:
// - per-base (Pooling::None) with W > 0: the contig grid of window_plan.h (plan_grid with stride S): every row is
//   a function of its position (and strand), the reference, the model and the options, whatever the region, the
//   other regions, --batch or -@. A FASTA record (--records) is its own contig.
// - Pooling::Mean, or W = 0: the region plus F bases of flank on each side (plan_windows), as the region defines.

// Receives the results, regions in the order they were added. Rows are in output orientation: for a '-' strand
// region, row 0 is the reverse complement of the region's last base.
class EmbedSink {
public:
    virtual ~EmbedSink() = default;
    // Pooling::None: begin() once per region, then rows() for consecutive chunks, then end().
    // rows: [n, H] float32 for region rows first .. first+n-1; ids: their token ids (4 = [PAD] for N/IUPAC,
    // 7..10 = A/C/G/T: the unscored positions are those with id 4).
    virtual void begin(const Region& r, int64_t length) {}
    virtual void rows(const Region& r, int64_t first, const float* rows, const int64_t* ids, int64_t n) {}
    virtual void end(const Region& r, int64_t length, int64_t n_scored) {}
    // Pooling::Mean: the mean over scored (A/C/G/T) positions, [H]; NaN in every dimension when there is none.
    virtual void pooled(const Region& r, const float* mean, int64_t length, int64_t n_scored) {}
    // After the last region; writers commit their files here.
    virtual void finish() {}
};

class Embedder {
public:
    // Throws Error for window 1 or < 0, stride < 0 or > window, flank < 0, batch < 1.
    Embedder(JanusModelImpl& model, EmbedOptions opt, EmbedSink& sink, WarnFn warn = {});
    ~Embedder();
    Embedder(const Embedder&) = delete;
    Embedder& operator=(const Embedder&) = delete;
    int64_t hidden_size() const { return hidden_; }
    const EmbedOptions& options() const { return opt_; }

    // Queues region of ref (already checked against ref: see check_region). ref must outlive finish().
    // Throws Error when region plus flanks has fewer than 2 bases (the model needs 2).
    void add(const Reference& ref, const Region& region);
    // Queues a whole sequence (a FASTA record), reported as region name:[0, L) on strand '+'.
    // source names the file in tokenizer errors.
    void add_sequence(const std::string& name, std::string seq, const std::string& source);
    // Runs everything queued and calls sink.finish().
    void finish();

    // Called with the number of region bases completed, for progress displays.
    std::function<void(int64_t)> on_bases;
    int64_t passes() const { return runner_.passes(); }

private:
    struct Item;
    struct Pending;
    void add_item(std::unique_ptr<Item> item);
    void pump(bool final);
    void run_batch(std::vector<Pending>& batch);
    void deliver(Item& item, const Window& w, const torch::Tensor& hidden, const std::vector<int64_t>& ids);
    void close_item(Item& item);

    JanusModelImpl& model_;
    EmbedOptions opt_;
    EmbedSink& sink_;
    WarnFn warn_;
    Runner runner_;
    int64_t hidden_;
    std::deque<std::unique_ptr<Item>> items_; // regions not yet completed, in order
    int64_t queued_inputs_ = 0;               // model inputs planned but not yet run
};

} // namespace janusdna
