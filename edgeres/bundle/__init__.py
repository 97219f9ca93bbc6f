"""Bundles an embedded app can load: artifact + ``manifest.json`` + ``labels.txt``, as a folder and
a ``.tar.gz``; and the torch-free runtime that verifies and runs them (``python -m edgeres.run``).

Device kits for targets whose engines must be built on the device live in ``edgeres.kit``.
"""

from edgeres.bundle.archive import safe_extract, write_tar_gz
from edgeres.bundle.manifest import LABELS, MANIFEST, SCHEMA, SCHEMA_VERSION
from edgeres.bundle.package import bundle_inputs, make_bundle, package_artifact, tarball_of
from edgeres.bundle.runtime import Bundle, Classification, Prediction, is_bundle, load_bundle, softmax

__all__ = ["LABELS", "MANIFEST", "SCHEMA", "SCHEMA_VERSION", "Bundle", "Classification", "Prediction",
           "bundle_inputs", "is_bundle", "load_bundle", "make_bundle", "package_artifact", "safe_extract",
           "softmax", "tarball_of", "write_tar_gz"]
