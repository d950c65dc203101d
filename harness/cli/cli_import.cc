// `residency import comfyui-log LOG [--out trace.jsonl]`.
#include <iostream>
#include <memory>

#include "harness/cli/cli.h"
#include "harness/import/comfy_log.h"
#include "traces/json_fields.h"
#include "runtime/io/whole_file.h"

namespace residency::cli {

Subcommand AddImport(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  CLI::App* c = app.add_subcommand("import", "Turn another tool's log into a trace");
  c->require_subcommand(1);
  CLI::App* log = c->add_subcommand("comfyui-log", "A ComfyUI console log -> a trace (warnings on stderr)");
  log->add_option("log", *path, "Console log (text)")->required();
  log->add_option("--out", *out, "Write the trace here instead of stdout");
  return {c, [path, out] {
            auto text = io::ReadWholeFile(*path, io::kMaxTraceFileBytes);
            if (!text.ok()) return Fail(text.status());
            auto r = import::ImportComfyLog(*text, *path);
            if (!r.ok()) return Fail(r.status());
            for (const std::string& w : r->warnings) std::cerr << "warning: " << w << "\n";
            const std::string trace = traces::WriteTrace(r->trace);
            if (out->empty()) {
              std::cout << trace;
            } else if (!WriteTextFile(*out, trace)) {
              return 2;
            }
            std::size_t models = 0, prompts = 0;
            for (const auto& e : r->trace.events) {
              models += e.type == traces::EventType::kModel;
              prompts += e.type == traces::EventType::kPromptBegin;
            }
            std::cerr << "imported " << models << " models and " << prompts << " prompts from " << *path << "\n";
            for (const std::string& s : r->summary) std::cerr << "  " << s << "\n";
            return 0;
          }};
}

}  // namespace residency::cli
