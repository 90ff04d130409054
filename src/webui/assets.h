// The frontend bundle (index.html, app.js, app.css), embedded in the binary at build time by
// webui_embed from the esbuild output, so a deployment needs no extra files.
#pragma once

#include <cstddef>
#include <string_view>

namespace hami::webui {

struct EmbeddedAsset {
  const char* name;          // "index.html"
  const char* content_type;  // "text/html; charset=utf-8"
  const unsigned char* data;
  std::size_t size;
  const char* etag;  // content hash, quoted
};

// The asset called `name`, or nullptr.
const EmbeddedAsset* FindAsset(std::string_view name);

}  // namespace hami::webui
