#include "janusdna/embed.h"
#include "janusdna/error.h"
#include "janusdna/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <limits>

namespace janusdna {

int64_t default_flank(int64_t window, int64_t train_length) { return (window > 0 ? window : train_length) / 8; }

int64_t default_stride(int64_t window) { return std::max<int64_t>(1, window * 3 / 4); }

// One queued region. Local coordinates index the bases of region + flanks in output orientation: for strand '+'
// local x is contig position ext_beg + x, for strand '-' it is ext_end - 1 - x (the reverse complement).
struct Embedder::Item {
    Region region;
    const Reference* ref = nullptr; // null: the bases are in seq (a FASTA record)
    std::string seq;
    std::string source;
    int64_t ext_beg = 0, ext_end = 0; // region + flanks, contig coordinates
    int64_t local_beg = 0;            // first region base, local coordinates
    int64_t length = 0;               // region bases
    std::vector<Window> windows;      // local coordinates
    bool planned = false;             // windows already planned (on the contig grid)
    size_t next_window = 0;           // first window not yet put in a batch
    size_t done_windows = 0;
    int64_t n_scored = 0;
    bool begun = false;
    std::vector<double> sum;          // [H] for mean pooling
};

struct Embedder::Pending {
    Item* item;
    size_t w;
    std::vector<int64_t> ids; // [L] token ids of the window, output orientation
};

Embedder::Embedder(JanusModelImpl& model, EmbedOptions opt, EmbedSink& sink, WarnFn warn)
    : model_(model), opt_(opt), sink_(sink), warn_(std::move(warn)),
      runner_(model, opt.batch < 1 ? throw Error(fmt::format("--batch must be at least 1, got {}", opt.batch)) : opt.batch),
      hidden_(model.config.hidden_size) {
    if (opt_.window < 0 || opt_.window == 1)
        throw Error(fmt::format("--window must be 0 (one pass per region) or at least 2, got {}", opt_.window));
    if (opt_.stride < 0) throw Error(fmt::format("--stride must not be negative, got {}", opt_.stride));
    if (opt_.window > 0 && opt_.stride > opt_.window)
        throw Error(fmt::format("--stride {} is larger than --window {}: bases would be left out", opt_.stride, opt_.window));
    if (opt_.flank < 0) throw Error(fmt::format("--flank must not be negative, got {}", opt_.flank));
    if (opt_.stride == 0) opt_.stride = default_stride(opt_.window);
}

Embedder::~Embedder() = default;

void Embedder::add(const Reference& ref, const Region& region) {
    auto item = std::make_unique<Item>();
    item->region = region;
    item->ref = &ref;
    item->source = ref.path();
    const int64_t contig_len = ref.length(region.contig);
    if (contig_len < 0) throw Error(ref.missing_contig_message(region.contig));
    if (region.beg < 0 || region.end > contig_len || region.beg >= region.end)
        throw Error(fmt::format("region {} ({}:{}-{}) is empty or outside contig {} ({} bp)", region.name, region.contig,
                                region.beg + 1, region.end, region.contig, contig_len));
    if (opt_.window > 0 && opt_.pool == Pooling::None && contig_len >= 2) {
        // Per-base rows from the contig grid: a base's row depends on its position only, not on the region.
        std::vector<Window> grid = plan_grid(region.beg, region.end, contig_len, opt_.window, opt_.stride);
        item->ext_beg = grid.front().beg;
        item->ext_end = grid.back().end;
        const bool minus = region.strand == '-';
        if (minus) std::reverse(grid.begin(), grid.end());
        for (Window& w : grid) // to local coordinates (output orientation)
            w = minus ? Window{item->ext_end - w.end, item->ext_end - w.beg, item->ext_end - w.own_end, item->ext_end - w.own_beg}
                      : Window{w.beg - item->ext_beg, w.end - item->ext_beg, w.own_beg - item->ext_beg, w.own_end - item->ext_beg};
        item->windows = std::move(grid);
        item->planned = true;
    } else {
        item->ext_beg = std::max<int64_t>(0, region.beg - opt_.flank);
        item->ext_end = std::min<int64_t>(contig_len, region.end + opt_.flank);
    }
    item->local_beg = region.strand == '-' ? item->ext_end - region.end : region.beg - item->ext_beg;
    add_item(std::move(item));
}

void Embedder::add_sequence(const std::string& name, std::string seq, const std::string& source) {
    auto item = std::make_unique<Item>();
    item->region.contig = name;
    item->region.name = name;
    item->region.beg = 0;
    item->region.end = static_cast<int64_t>(seq.size());
    item->ext_beg = 0;
    item->ext_end = item->region.end;
    item->seq = std::move(seq);
    item->source = source;
    if (item->region.end == 0) throw Error(fmt::format("{}: record \"{}\" is empty", source, name));
    add_item(std::move(item));
}

void Embedder::add_item(std::unique_ptr<Item> item) {
    const int64_t E = item->ext_end - item->ext_beg;
    item->length = item->region.end - item->region.beg;
    if (E < 2)
        throw Error(fmt::format("{}: region {} has {} base{} with its flanks; the model needs at least 2", item->source,
                                item->region.name, E, E == 1 ? "" : "s"));
    if (!item->planned)
        item->windows = plan_windows(item->local_beg, item->local_beg + item->length, E, opt_.window, opt_.stride, opt_.flank);
    if (opt_.pool == Pooling::Mean) item->sum.assign(static_cast<size_t>(hidden_), 0.0);
    queued_inputs_ += static_cast<int64_t>(item->windows.size()) * (opt_.rc ? 2 : 1);
    items_.push_back(std::move(item));
    pump(false);
}

void Embedder::finish() {
    pump(true);
    sink_.finish();
}

void Embedder::pump(bool final) {
    const int64_t per_window = opt_.rc ? 2 : 1;
    while (queued_inputs_ > 0 && (final || queued_inputs_ >= opt_.batch)) {
        std::vector<Pending> batch;
        int64_t n = 0;
        for (auto& it : items_) {
            Item& item = *it;
            while (item.next_window < item.windows.size() && (n == 0 || n + per_window <= opt_.batch)) {
                const Window& w = item.windows[item.next_window];
                Pending p{&item, item.next_window++, {}};
                std::string bases;
                int64_t first_pos;
                if (!item.ref) {
                    bases = item.seq.substr(static_cast<size_t>(w.beg), static_cast<size_t>(w.end - w.beg));
                    first_pos = w.beg + 1;
                } else if (item.region.strand == '-') {
                    first_pos = item.ext_end - w.end;
                    bases = item.ref->fetch(item.region.contig, first_pos, item.ext_end - w.beg);
                    first_pos += 1;
                } else {
                    first_pos = item.ext_beg + w.beg;
                    bases = item.ref->fetch(item.region.contig, first_pos, item.ext_beg + w.end);
                    first_pos += 1;
                }
                Tokens tok = tokenize(bases, item.source, item.region.contig, first_pos);
                if (item.ref && item.region.strand == '-') {
                    std::reverse(tok.ids.begin(), tok.ids.end());
                    for (auto& id : tok.ids) if (id >= kIdA && id <= kIdT) id = kIdA + kIdT - id; // A<->T, C<->G
                }
                p.ids = std::move(tok.ids);
                batch.push_back(std::move(p));
                n += per_window;
            }
            if (n > 0 && n + per_window > opt_.batch) break;
        }
        queued_inputs_ -= n;
        run_batch(batch);
    }
}

void Embedder::run_batch(std::vector<Pending>& batch) {
    std::vector<std::vector<int64_t>> inputs;
    inputs.reserve(batch.size() * (opt_.rc ? 2 : 1));
    for (const Pending& p : batch) {
        inputs.push_back(p.ids);
        if (opt_.rc) {
            std::vector<int64_t> rc(p.ids.rbegin(), p.ids.rend());
            for (auto& id : rc) if (id >= kIdA && id <= kIdT) id = kIdA + kIdT - id;
            inputs.push_back(std::move(rc));
        }
    }
    RunOptions ro;
    ro.hidden = true;
    ro.log_probs = false;
    std::vector<WindowResult> results = runner_.run(inputs, ro);
    for (size_t i = 0; i < batch.size(); ++i) {
        torch::Tensor h;
        if (opt_.rc) {
            torch::Tensor hf = results[2 * i].hidden;                  // [L, H] forward pass
            torch::Tensor hr = results[2 * i + 1].hidden.flip({0});    // [L, H] RC pass, back in forward order
            h = ((hf + hr) * 0.5).contiguous();                        // [L, H]
        } else {
            h = results[i].hidden.contiguous();                        // [L, H]
        }
        Item& item = *batch[i].item;
        deliver(item, item.windows[batch[i].w], h, batch[i].ids);
        results[i * (opt_.rc ? 2 : 1)] = WindowResult(); // release as we go
        // Windows run in region order, so completed regions are always at the front: close them before the next
        // region's rows go out.
        while (!items_.empty() && items_.front()->done_windows == items_.front()->windows.size()) {
            close_item(*items_.front());
            items_.pop_front();
        }
    }
}

void Embedder::deliver(Item& item, const Window& w, const torch::Tensor& hidden, const std::vector<int64_t>& ids) {
    const int64_t H = hidden_;
    const int64_t off = w.own_beg - w.beg, n = w.own_end - w.own_beg;
    const float* rows = hidden.data_ptr<float>() + off * H;
    const int64_t* row_ids = ids.data() + off;
    int64_t scored = 0;
    for (int64_t t = 0; t < n; ++t) scored += row_ids[t] != kPadId;
    item.n_scored += scored;
    if (opt_.pool == Pooling::None) {
        if (!item.begun) sink_.begin(item.region, item.length);
        item.begun = true;
        sink_.rows(item.region, w.own_beg - item.local_beg, rows, row_ids, n);
    } else {
        for (int64_t t = 0; t < n; ++t) {
            if (row_ids[t] == kPadId) continue;
            const float* r = rows + t * H;
            for (int64_t d = 0; d < H; ++d) item.sum[d] += r[d];
        }
    }
    ++item.done_windows;
    if (on_bases) on_bases(n);
}

void Embedder::close_item(Item& item) {
    if (opt_.pool == Pooling::None) {
        sink_.end(item.region, item.length, item.n_scored);
        return;
    }
    std::vector<float> mean(static_cast<size_t>(hidden_), std::numeric_limits<float>::quiet_NaN());
    if (item.n_scored > 0) {
        for (int64_t d = 0; d < hidden_; ++d) mean[d] = static_cast<float>(item.sum[d] / static_cast<double>(item.n_scored));
    } else if (warn_) {
        warn_(fmt::format("region {} ({}:{}-{}) has no A/C/G/T base; its mean embedding is NaN", item.region.name,
                          item.region.contig, item.region.beg + 1, item.region.end));
    }
    sink_.pooled(item.region, mean.data(), item.length, item.n_scored);
}

} // namespace janusdna
