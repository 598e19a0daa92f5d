// The model: parity with the reference fixtures, the Janus information-flow properties, gradients, training,
// parameter counts and model files.
#include <doctest/doctest.h>

#include "helpers.h"
#include "janusdna/atomic_file.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/model.h"
#include "janusdna/model_file.h"
#include "janusdna/optim.h"
#include "janusdna/tokenizer.h"

#include <cstdio>
#include <fstream>
#include <torch/optim/adamw.h>

using namespace janusdna;
using torch::Tensor;

namespace {

// Random weights large enough that every block visibly changes the output (the reference init is tiny).
JanusModel random_model(const ModelConfig& c, torch::Dtype dtype, uint64_t seed) {
    torch::manual_seed(seed);
    JanusModel m(c);
    m->init_weights();
    torch::NoGradGuard g;
    for (auto& item : m->named_parameters())
        if (item.key().find("A_log") == std::string::npos) item.value().add_(torch::randn_like(item.value()) * 0.3);
    m->to(dtype);
    return m;
}

double max_abs_diff(const Tensor& a, const Tensor& b) { return (a - b).abs().max().item<double>(); }

} // namespace

TEST_CASE("fixtures: logits and hidden state reproduce the reference forward pass") {
    for (std::string name : {"tiny-midattn", "tiny-nomidattn"}) {
        CAPTURE(name);
        LoadedModel m = load_model(test::data(name + ".model.safetensors"));
        SafetensorsFile expected = SafetensorsFile::open(test::data(name + ".expected.safetensors"));
        Tensor ids = test::read_tensor(expected, "input_ids");        // [B, L]
        Tensor want_logits = test::read_tensor(expected, "logits");   // [B, L, 16]
        Tensor want_hidden = test::read_tensor(expected, "hidden");   // [B, L, H]

        // The fixture's input ids are the tokenized FASTA records (N -> [PAD]).
        FastaReader fa(test::data(name + ".fa"));
        FastaRecord rec;
        int64_t b = 0;
        while (fa.next(rec)) {
            Tokens t = tokenize(rec.seq, name, rec.name);
            REQUIRE(b < ids.size(0));
            CHECK(torch::equal(torch::tensor(t.ids), ids[b]));
            ++b;
        }
        CHECK(b == ids.size(0));

        c10::InferenceMode guard;
        ForwardOutput y = m.model->forward(ids);
        const double dl = max_abs_diff(y.logits, want_logits), dh = max_abs_diff(y.hidden, want_hidden);
        MESSAGE(name << ": max |dlogits| " << dl << ", max |dhidden| " << dh);
        CHECK(dl <= 1e-4);
        CHECK(dh <= 1e-4);
        // One record at a time gives the same result as the batch.
        ForwardOutput y0 = m.model->forward(ids.narrow(0, 0, 1));
        CHECK(max_abs_diff(y0.logits, y.logits.narrow(0, 0, 1)) <= 1e-5);
    }
}

TEST_CASE("the logits at t do not depend on the base at t; each stream is causal") {
    for (bool midattn : {true, false}) {
        ModelConfig c = test::tiny_config();
        if (!midattn) c.attn_layer_offset = 100;
        JanusModel m = random_model(c, torch::kDouble, 7);
        m->eval();
        torch::NoGradGuard g;
        const int64_t L = 13;
        Tensor ids = test::random_ids(L);
        ForwardOptions opt;
        opt.streams = true;
        ForwardOutput base = m->forward(ids, opt);
        for (int64_t t = 0; t < L; ++t) {
            Tensor alt = ids.clone();
            alt[0][t] = 7 + (alt[0][t].item<int64_t>() - 7 + 1 + t % 3) % 4; // a different base
            ForwardOutput y = m->forward(alt, opt);
            CAPTURE(t);
            // Position t never sees its own base ...
            CHECK(max_abs_diff(y.logits[0][t], base.logits[0][t]) < 1e-12);
            // ... but every other position does.
            for (int64_t s = 0; s < L; ++s)
                if (s != t) CHECK(max_abs_diff(y.logits[0][s], base.logits[0][s]) > 1e-9);
            // Forward stream at i depends only on bases <= i; backward stream only on bases >= i.
            for (int64_t i = 0; i < L; ++i) {
                const double df = max_abs_diff(y.stream_fwd[0][i], base.stream_fwd[0][i]);
                const double db = max_abs_diff(y.stream_bwd[0][i], base.stream_bwd[0][i]);
                if (i < t) CHECK(df < 1e-12); else CHECK(df > 1e-9);
                if (i > t) CHECK(db < 1e-12); else CHECK(db > 1e-9);
            }
        }
    }
}

TEST_CASE("the Janus mask allows exactly the four blocks of MODEL.md 2.7") {
    const int64_t L = 6;
    Tensor m = janus_mask(L, torch::kCPU);
    for (int64_t q = 0; q < 2 * L; ++q)
        for (int64_t k = 0; k < 2 * L; ++k) {
            bool want = (q < L && k < L && k <= q) || (q < L && k >= L && k >= L + q + 2) ||
                        (q >= L && k < L && q >= k + L + 2) || (q >= L && k >= L && k >= q);
            CHECK(m[q][k].item<bool>() == want);
        }
}

TEST_CASE("gradients match finite differences in double precision") {
    ModelConfig c = test::tiny_config();
    JanusModel m = random_model(c, torch::kDouble, 11);
    Tensor ids = test::random_ids(9);
    Tensor w = torch::randn({1, 9, c.padded_vocab()}, torch::kDouble);
    auto loss_fn = [&] {
        ForwardOptions opt;
        opt.aux_loss = true;
        ForwardOutput y = m->forward(ids, opt);
        // The aux loss is smooth through the router probabilities while the top-k choices stay put.
        return (y.logits * w).sum() + y.aux_loss;
    };
    m->zero_grad();
    loss_fn().backward();
    int checked = 0;
    torch::manual_seed(3);
    for (auto& item_ : m->named_parameters()) {
        const std::string& name = item_.key();
        torch::Tensor& p = item_.value();
        // A few elements of every parameter tensor.
        for (int r = 0; r < 2; ++r) {
            const int64_t i = torch::randint(p.numel(), {1}).item<int64_t>();
            const double eps = 1e-6;
            double analytic = p.grad().view(-1)[i].item<double>();
            double plus, minus;
            {
                torch::NoGradGuard g;
                double orig = p.view(-1)[i].item<double>();
                p.view(-1)[i] = orig + eps;
                plus = loss_fn().item<double>();
                p.view(-1)[i] = orig - eps;
                minus = loss_fn().item<double>();
                p.view(-1)[i] = orig;
            }
            const double numeric = (plus - minus) / (2 * eps);
            CAPTURE(name);
            CHECK(std::abs(numeric - analytic) <= 1e-5 * std::max(1.0, std::abs(numeric)));
            ++checked;
        }
    }
    CHECK(checked > 50);
}

TEST_CASE("the load-balancing loss is the Switch/Mixtral form and has gradients") {
    Tensor logits = torch::tensor({{2.0, 1.0, 0.0}, {0.0, 3.0, 1.0}}, torch::kDouble).requires_grad_();
    Tensor aux = load_balancing_loss({logits}, 1);
    // top-1 choices: expert 0, expert 1 -> f = [0.5, 0.5, 0]; P = mean softmax.
    Tensor p = torch::softmax(logits.detach(), -1).mean(0);
    const double want = 3 * (0.5 * p[0].item<double>() + 0.5 * p[1].item<double>());
    CHECK(aux.item<double>() == doctest::Approx(want).epsilon(1e-12));
    aux.backward();
    CHECK(logits.grad().abs().sum().item<double>() > 0);
    // Top-2 over several layers' logits: the one-hot form of the reference (f = mean of one-hot rows per slot).
    torch::manual_seed(24);
    for (auto dt : {torch::kFloat, torch::kDouble}) {
        std::vector<Tensor> layers = {torch::randn({37, 16}, torch::TensorOptions().dtype(dt)),
                                      torch::randn({29, 16}, torch::TensorOptions().dtype(dt))};
        const Tensor all = torch::cat(layers, 0), probs = torch::softmax(all, -1);
        const Tensor f = torch::one_hot(std::get<1>(probs.topk(2, -1)), 16).to(dt).mean(0); // [2, 16]
        const double want2 = (f * probs.mean(0).unsqueeze(0)).sum().item<double>() * 16;
        CHECK(load_balancing_loss(layers, 2).item<double>() == doctest::Approx(want2).epsilon(dt == torch::kDouble ? 1e-14 : 1e-6));
    }
    // From routers' outputs: f counts the given choices (here not the top-k of probs), P is the probabilities'
    // mean, and the gradient with respect to probs is E f_e / T in every row.
    Tensor probs = torch::tensor({{0.5, 0.3, 0.2}, {0.1, 0.6, 0.3}, {0.2, 0.2, 0.6}}, torch::kDouble).requires_grad_();
    const Tensor chosen = torch::tensor({{2}, {2}, {0}}, torch::kLong);
    Tensor aux1 = load_balancing_loss(std::vector<RouterOutput>{{probs, chosen}});
    // f = [1/3, 0, 2/3], P = [0.8, 1.1, 1.1] / 3
    CHECK(aux1.item<double>() == doctest::Approx(3 * (0.8 / 9 + 2.2 / 9)).epsilon(1e-12));
    const Tensor g = torch::autograd::grad({aux1}, {probs})[0];
    CHECK(torch::allclose(g, torch::tensor({1.0 / 3, 0.0, 2.0 / 3}, torch::kDouble).expand({3, 3}), 0, 1e-12));
    CHECK_THROWS_WITH_AS(load_balancing_loss(std::vector<RouterOutput>{{probs, torch::tensor({{3}, {0}, {1}}, torch::kLong)}}),
                         "load_balancing_loss: expert 3 out of [0, 3)", Error);
}

TEST_CASE("top_k_indices equals torch::topk's indices, and breaks ties to the lower index") {
    torch::manual_seed(23);
    for (int64_t k : {1, 2, 5}) {
        for (auto dt : {torch::kFloat, torch::kDouble}) {
            const Tensor s = torch::randn({257, 16}, torch::TensorOptions().dtype(dt));
            CHECK(torch::equal(top_k_indices(s, k), std::get<1>(s.topk(k, -1))));
        }
    }
    // k = 2 has its own branch-free loop: the same pairs as the general loop's first two slots (k = 3) on ties
    // (values from a small set), and the general loop's NaN rule (a NaN is taken only to fill the list, and a NaN
    // in the second slot keeps every later value out) on rows worked by hand.
    for (auto dt : {torch::kFloat, torch::kDouble}) {
        const Tensor s = torch::randint(0, 4, {500, 16}, torch::TensorOptions().dtype(dt));
        CHECK(torch::equal(top_k_indices(s, 2), top_k_indices(s, 3).narrow(1, 0, 2)));
        const double nan = std::nan("");
        const Tensor n = torch::tensor({nan, 1.0, 2.0, 0.0, 1.0, nan, 2.0, 3.0, 1.0, 2.0, nan, 3.0}).to(dt).view({3, 4});
        CHECK(torch::equal(top_k_indices(n, 2), torch::tensor({0, 2, 0, 1, 3, 1}, torch::kLong).view({3, 2})));
    }
    const Tensor tie = torch::tensor({{1.0f, 3.0f, 3.0f, 0.0f}, {2.0f, 2.0f, 2.0f, 2.0f}});
    CHECK(torch::equal(top_k_indices(tie, 2), torch::tensor({{int64_t(1), int64_t(2)}, {int64_t(0), int64_t(1)}})));
    CHECK_THROWS_AS(top_k_indices(tie, 5), Error);
}

TEST_CASE("a few optimiser steps lower the loss") {
    ModelConfig c = test::tiny_config();
    torch::manual_seed(5);
    JanusModel m(c);
    m->init_weights();
    Tensor ids = test::random_ids(32, 2);
    torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-2));
    auto loss_of = [&] {
        ForwardOptions o;
        o.aux_loss = true;
        ForwardOutput y = m->forward(ids, o);
        return torch::cross_entropy_loss(y.logits.view({-1, c.padded_vocab()}), ids.view(-1)) + y.aux_loss;
    };
    double first = 0, last = 0;
    for (int step = 0; step < 30; ++step) {
        opt.zero_grad();
        Tensor loss = loss_of();
        loss.backward();
        opt.step();
        if (step == 0) first = loss.item<double>();
        last = loss.item<double>();
    }
    MESSAGE("loss " << first << " -> " << last);
    CHECK(last < first - 0.3);
}

TEST_CASE("AdamW equals torch::optim::AdamW, with decay groups and gradient clipping") {
    for (auto dtype : {torch::kDouble, torch::kFloat}) {
        CAPTURE(dtype);
        torch::manual_seed(21);
        const auto opt_t = torch::TensorOptions().dtype(dtype);
        // Names decide the decay: ".bias" and the token embedding are not decayed.
        const std::vector<std::string> names = {"layers.0.w", "layers.0.b.bias", "embed_tokens.weight", "lm_head.weight"};
        std::vector<Tensor> ours, theirs;
        std::vector<std::pair<std::string, Tensor>> named;
        for (size_t i = 0; i < names.size(); ++i) {
            Tensor p = torch::randn({int64_t(3 + i), 5}, opt_t);
            ours.push_back(p.clone());
            theirs.push_back(p.clone().requires_grad_(true));
            named.emplace_back(names[i], ours.back());
        }
        const double lr = 3e-2, wd = 0.1, clip = 1.5;
        AdamW adam(named, AdamWOptions{wd, 0.9, 0.95, 1e-8, clip});
        torch::optim::AdamW decayed({theirs[0], theirs[3]},
                                    torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(wd));
        torch::optim::AdamW plain({theirs[1], theirs[2]},
                                  torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(0));
        for (int t = 1; t <= 4; ++t) {
            std::vector<Tensor> grads;
            for (auto& p : ours) grads.push_back(torch::randn(p.sizes(), opt_t) * (t == 2 ? 3.0 : 0.2));
            for (size_t i = 0; i < ours.size(); ++i) ours[i].mutable_grad() = grads[i].clone();
            const Tensor flat = adam.flat_grad();
            const double norm = adam.step(flat, lr, t);
            CHECK(norm == doctest::Approx(flat.norm().item<double>()).epsilon(1e-12));
            const double coef = norm > clip ? clip / (norm + 1e-6) : 1.0; // step 2's gradients get clipped
            for (size_t i = 0; i < theirs.size(); ++i) theirs[i].mutable_grad() = grads[i] * coef;
            decayed.step(), plain.step();
            for (size_t i = 0; i < ours.size(); ++i) {
                CAPTURE(t);
                CAPTURE(names[i]);
                const double tol = dtype == torch::kDouble ? 1e-13 : 2e-6;
                CHECK((ours[i] - theirs[i].detach()).abs().max().item<double>() <= tol);
            }
        }
    }
}

TEST_CASE("parameter counts equal MODEL.md 2.12") {
    struct Row { const char* preset; int64_t backbone, backbone_mlp, activated, activated_mlp, lm_head; };
    const Row rows[] = {
        {"32-midattn", 1797820, 1802012, 421564, 425756, 512},
        {"32-nomidattn", 1803392, 1807584, 427136, 431328, 512},
        {"72-midattn", 8946878, 8967830, 1979582, 2000534, 1152},
        {"72-nomidattn", 8955304, 8976256, 1988008, 2008960, 1152},
        {"144-nomidattn", 35531072, 35614448, 7661888, 7745264, 2304},
    };
    for (const auto& r : rows) {
        CAPTURE(r.preset);
        for (bool fm : {false, true}) {
            ModelConfig c = ModelConfig::preset(r.preset);
            c.final_mlp = fm;
            JanusModel m(c);
            ParameterCounts n = count_parameters(*m);
            CHECK(n.backbone == (fm ? r.backbone_mlp : r.backbone));
            CHECK(n.activated == (fm ? r.activated_mlp : r.activated));
            CHECK(n.lm_head == r.lm_head);
        }
    }
}

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/janusdna-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    return tmpl;
}

// Rewrites a model file with renamed / dropped / altered tensors.
void rewrite(const std::string& in, const std::string& out,
             const std::function<bool(std::string&, DType&, std::vector<int64_t>&, std::string&)>& edit) {
    SafetensorsFile f = SafetensorsFile::open(in);
    SafetensorsWriter w;
    for (const auto& [k, v] : f.metadata()) w.set_metadata(k, v);
    for (const auto& v : f.tensors()) {
        std::string name = v.name, bytes(static_cast<const char*>(v.data), v.nbytes);
        DType dt = v.dtype;
        std::vector<int64_t> shape = v.shape;
        if (edit(name, dt, shape, bytes)) w.add(name, dt, shape, bytes.data(), bytes.size());
    }
    w.write(out);
}

std::string load_error(const std::string& path) {
    try {
        load_model(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

} // namespace

TEST_CASE("model files: save/load round trip, prefixes, half precision and clear errors") {
    const std::string dir = temp_dir();
    const std::string fixture = test::data("tiny-midattn.model.safetensors");
    LoadedModel ref = load_model(fixture);
    Tensor ids = test::random_ids(20);
    torch::NoGradGuard g;
    Tensor want = ref.model->forward(ids).logits;

    SUBCASE("round trip") {
        save_model(dir + "/rt.safetensors", *ref.model, {{"note", "x"}});
        LoadedModel back = load_model(dir + "/rt.safetensors");
        CHECK(back.metadata.at("note") == "x");
        CHECK(torch::equal(back.model->forward(ids).logits, want));
    }
    SUBCASE("Lightning prefixes and no final_mlp") {
        rewrite(fixture, dir + "/l.safetensors", [](std::string& n, DType&, std::vector<int64_t>&, std::string&) {
            if (n.rfind("model.final_mlp.", 0) == 0) return false;
            n = "model." + n; // model.X -> model.model.X, lm_head.weight -> model.lm_head.weight
            return true;
        });
        LoadedModel l = load_model(dir + "/l.safetensors");
        CHECK_FALSE(l.config.final_mlp);
        CHECK(l.model->forward(ids).logits.size(2) == 16);
    }
    SUBCASE("bfloat16 and float16 weights load") {
        for (DType to : {DType::BF16, DType::F16}) {
            rewrite(fixture, dir + "/h.safetensors", [&](std::string&, DType& dt, std::vector<int64_t>&, std::string& b) {
                std::string out(b.size() / 2, '\0');
                const float* f = reinterpret_cast<const float*>(b.data());
                uint16_t* h = reinterpret_cast<uint16_t*>(out.data());
                for (size_t i = 0; i < b.size() / 4; ++i) h[i] = to == DType::BF16 ? float_to_bf16(f[i]) : float_to_half(f[i]);
                b = out;
                dt = to;
                return true;
            });
            LoadedModel h = load_model(dir + "/h.safetensors");
            // Exactly the float32 model with every weight rounded to 16 bits (round to nearest even) ...
            LoadedModel rounded = load_model(fixture);
            {
                torch::NoGradGuard no_grad;
                for (auto& p : rounded.model->parameters())
                    p.copy_(p.to(to == DType::BF16 ? torch::kBFloat16 : torch::kHalf).to(torch::kFloat));
            }
            CHECK(max_abs_diff(h.model->forward(ids).logits, rounded.model->forward(ids).logits) <= 1e-6);
            // ... which moves the logits by what 8 (bfloat16) or 11 (float16) significant bits allow, no more.
            const double d = max_abs_diff(h.model->forward(ids).logits, want);
            CHECK(d < (to == DType::BF16 ? 0.5 : 0.05));
            CHECK(d > 0);
        }
    }
    SUBCASE("missing, unexpected, wrong-shaped, wrong-dtype and unequal tied tensors") {
        rewrite(fixture, dir + "/e.safetensors", [](std::string& n, DType&, std::vector<int64_t>&, std::string&) {
            return n != "model.layers.3.mamba_module.mamba_fwd.D";
        });
        CHECK(load_error(dir + "/e.safetensors").find("missing tensor \"layers.3.mamba_module.mamba_fwd.D\"") != std::string::npos);
        rewrite(fixture, dir + "/e.safetensors", [](std::string& n, DType&, std::vector<int64_t>&, std::string&) {
            if (n == "lm_head.weight") n = "lm_head.bias";
            return true;
        });
        CHECK(load_error(dir + "/e.safetensors").find("lm_head") != std::string::npos);
        rewrite(fixture, dir + "/e.safetensors", [](std::string& n, DType&, std::vector<int64_t>& s, std::string&) {
            if (n == "model.embed_tokens.weight") s = {32, 16};
            return true;
        });
        CHECK(load_error(dir + "/e.safetensors").find("has shape [32, 16], expected [16, 32]") != std::string::npos);
        rewrite(fixture, dir + "/e.safetensors", [](std::string& n, DType& dt, std::vector<int64_t>&, std::string&) {
            if (n == "model.final_layernorm.weight") dt = DType::I32;
            return true;
        });
        CHECK(load_error(dir + "/e.safetensors").find("dtype I32") != std::string::npos);
        rewrite(fixture, dir + "/e.safetensors", [](std::string& n, DType&, std::vector<int64_t>&, std::string& b) {
            if (n == "model.layers.0.mamba_module.mamba_rev.in_proj.weight") b[0] ^= 1;
            return true;
        });
        CHECK(load_error(dir + "/e.safetensors").find("differ") != std::string::npos);
    }
    SUBCASE("truncated, empty and foreign files") {
        std::ifstream in(fixture, std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        for (size_t keep : {size_t(0), size_t(5), size_t(100), bytes.size() / 2, bytes.size() - 1}) {
            std::ofstream(dir + "/t.safetensors", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(keep));
            CAPTURE(keep);
            CHECK(load_error(dir + "/t.safetensors").find(dir + "/t.safetensors") == 0);
        }
        CHECK(load_error(dir + "/nonexistent.safetensors").find("nonexistent") != std::string::npos);
        CHECK(load_error(test::data("tiny-midattn.expected.safetensors")).find("janusdna_config") != std::string::npos);
    }
    std::system(("rm -rf " + dir).c_str());
}
