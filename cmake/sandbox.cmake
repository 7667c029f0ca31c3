# Filled in by the sandbox work (issue 4): sources under sandbox/, libseccomp, the helper binary.
