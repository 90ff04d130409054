# Runs `npm ci` for the web UI in the build tree with a clear message when it fails.
# cmake -DNPM=... -DDIR=... -P npm_ci.cmake
execute_process(COMMAND ${NPM} ci --ignore-scripts --no-audit --no-fund --loglevel=error
                WORKING_DIRECTORY ${DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR
    "webui: 'npm ci' failed (exit ${rc}). The first build downloads the packages pinned in "
    "src/webui/frontend/package-lock.json (preact, htm, uplot, esbuild, puppeteer-core, "
    "axe-core) from the npm registry: it must be reachable, or ~/.npm must already hold them.")
endif()
