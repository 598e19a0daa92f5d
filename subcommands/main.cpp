// janusdna: the dispatcher. One table row per subcommand; the table also prints the usage.
#include <cstdio>
#include <cstring>
#include <string>

#include "janusdna/interrupt.h"
#include "janusdna/runtime.h"

#include <htslib/hts.h>

int main_info(int argc, char** argv);
int main_predict(int argc, char** argv);
int main_embed(int argc, char** argv);
int main_score_variants(int argc, char** argv);
int main_track(int argc, char** argv);
int main_pretrain(int argc, char** argv);
int main_finetune(int argc, char** argv);
int main_evaluate(int argc, char** argv);
int main_convert(int argc, char** argv);

namespace {

struct Command {
    const char* name;
    int (*func)(int, char**);
    const char* group;
    const char* help;
};

const Command kCommands[] = {
    {"info", main_info, "Models", "describe a model file: config, layer plan, parameters, checksum"},
    {"pretrain", main_pretrain, "Models", "train JanusDNA on a genome (resumable, data-parallel)"},
    {"convert", main_convert, "Models", "convert the reference's checkpoints (Lightning, Hugging Face) safely; export to HF"},
    {"finetune", main_finetune, "Models", "fine-tune a sequence classifier on a labelled dataset (GUE, GenomicBenchmarks, ...)"},
    {"embed", main_embed, "Inference", "embeddings of genomic regions, per base or pooled (BED, NPY, safetensors)"},
    {"predict", main_predict, "Inference", "per-base probabilities for every record of a FASTA file"},
    {"score-variants", main_score_variants, "Variant effects", "zero-shot scores for the variants of a VCF/BCF"},
    {"track", main_track, "Variant effects", "per-base tracks (bedGraph/bigWig) and saturation mutagenesis"},
    {"evaluate", main_evaluate, "Evaluation", "benchmark metrics with baselines: classification, variant effect, bits per base"},
};

void usage(FILE* out) {
    std::fprintf(out, "\nProgram: janusdna (JanusDNA bidirectional DNA language model, native CPU engine)\n"
                      "Version: %s\n\nUsage:   janusdna <command> [options]\n", JANUSDNA_VERSION);
    const char* group = "";
    for (const auto& c : kCommands) {
        if (std::strcmp(group, c.group) != 0) {
            group = c.group;
            std::fprintf(out, "\n  -- %s\n", group);
        }
        std::fprintf(out, "     %-16s %s\n", c.name, c.help);
    }
    std::fprintf(out, "\n  -- General\n     help CMD         show the options of CMD\n"
                      "     --version        versions of janusdna, LibTorch, htslib, BLAS; CPU kernels\n\n");
}

const Command* find(const char* name) {
    for (const auto& c : kCommands)
        if (std::strcmp(c.name, name) == 0) return &c;
    return nullptr;
}

} // namespace

int main(int argc, char** argv) {
    // janusdna reports every failure itself, in one line naming the file; htslib's own messages would add more.
    // -v 2 turns them back on (apply_common_options).
    hts_set_log_level(HTS_LOG_OFF);
    janusdna::tune_allocator();
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    const std::string cmd = argv[1];
    if (cmd == "--version" || cmd == "version") {
        std::fputs(janusdna::build_info().c_str(), stdout);
        return 0;
    }
    if (cmd == "-h" || cmd == "--help") {
        usage(stdout);
        return 0;
    }
    if (cmd == "help") {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        const Command* c = find(argv[2]);
        if (!c) {
            std::fprintf(stderr, "janusdna: unknown command '%s'\n", argv[2]);
            return 1;
        }
        char help_flag[] = "--help";
        char* sub_argv[] = {argv[2], help_flag, nullptr};
        return c->func(2, sub_argv);
    }
    const Command* c = find(cmd.c_str());
    if (!c) {
        std::fprintf(stderr, "janusdna: unknown command '%s'\n", cmd.c_str());
        usage(stderr);
        return 1;
    }
    janusdna::install_interrupt_cleanup("janusdna " + cmd);
    return c->func(argc - 1, argv + 1);
}
