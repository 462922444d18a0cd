/**
 * Where the client tools installed by `clients/install.sh` live. Versions are
 * read from that script so it stays their single source.
 */
import { join, resolve } from "node:path";
import { cacheDir } from "../../local/cache.js";
import { clientToolVersion, grpcurlPath } from "../../local/client-tools.js";

/** Repository root. */
export const repoRoot = resolve(import.meta.dirname, "..", "..");

/** Absolute paths of the client tools; run `clients/install.sh chromium` first. */
export const tools = {
  grpcurl: grpcurlPath(),
  python: join(cacheDir(), `python-grpcio-tools-${clientToolVersion("GRPCIO_TOOLS_VERSION")}`, "bin", "python"),
  chromium: "/usr/bin/chromium",
  curl: "curl",
  go: "go",
};
