"""Any part of an archive elsewhere: `publish` it over plain HTTP, `sync` it verified.

`mica.sync.publish` writes the manifests (`mica.sync.manifest`) a static web server serves
beside the archive's files; `mica.sync.client` fetches heads, parts and files (bounded
parallel transfers, HTTP ranges, retries with backoff); `mica.sync.install` verifies and
installs them into a local archive so that a reader sees it before or after, never between;
`mica.sync.run` plans and drives a sync. ``docs/sync.rst`` shows the server and laptop sides.
"""
