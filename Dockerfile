# One image for every Yuqing service; each Kubernetes Deployment picks its command:
#   yuqing ingest serve | yuqing nlp worker | yuqing alerts worker | yuqing search indexer | yuqing search serve
#
# Targets:
#   builder   virtualenv with the pinned dependencies, the application, the built NLP model
#   runtime   (default) the virtualenv, the application and the model; no build tools, non-root
#
#   docker build -t yuqing:0.1.0 .
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t yuqing:0.1.0 .
#
# torch from PyPI is the CUDA build (several GB of nvidia-* wheels). The services only need
# the CPU build: pass TORCH_INDEX_URL pointing at a CPU wheel index (the PyTorch CPU index or
# a mirror of it) and the same torch version is installed from there first.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/yuqing/venv/bin:$PATH \
    YUQING_HOME=/tmp/yuqing-build \
    YUQING_MODEL_HOME=/opt/yuqing/models

WORKDIR /opt/yuqing/app
RUN python -m venv /opt/yuqing/venv

# Dependencies first, from the pins alone, so that code changes reuse this layer.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['model']))" > /tmp/requirements.txt \
 && if [ -n "$TORCH_INDEX_URL" ]; then \
      pip install --index-url "$TORCH_INDEX_URL" "$(grep '^torch==' constraints.txt)"; \
    fi \
 && pip install -c constraints.txt -r /tmp/requirements.txt

# The application. It finds schemas/, models/ and data/ next to its sources, so it is
# installed in place (editable) and this directory is what the runtime image runs.
COPY . .
RUN pip install --no-deps -e . \
 && python -m compileall -q yuqing services \
 && yuqing nlp ensure-model \
 && rm -rf /tmp/yuqing-build

FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="yuqing" \
      org.opencontainers.image.description="Yuqing public-opinion pipeline: ingest, NLP worker, alerts worker, indexer, search API" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 yuqing \
 && useradd --system --uid 10001 --gid yuqing --home-dir /var/lib/yuqing --no-create-home \
      --shell /usr/sbin/nologin yuqing \
 && install -d -o yuqing -g yuqing -m 0750 /var/lib/yuqing

COPY --from=builder /opt/yuqing /opt/yuqing

# Writable paths at run time: /var/lib/yuqing (YUQING_HOME, worker state) and /tmp; on
# Kubernetes both are emptyDir volumes under a read-only root filesystem.
ENV PATH=/opt/yuqing/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/yuqing \
    YUQING_HOME=/var/lib/yuqing \
    YUQING_MODEL_HOME=/opt/yuqing/models \
    YUQING_NLP_STATE_DIR=/var/lib/yuqing/state/nlp \
    YUQING_ALERTS_STATE_DIR=/var/lib/yuqing/state/alerts \
    YUQING_INGEST_HOST=0.0.0.0 \
    YUQING_SEARCH_HOST=0.0.0.0 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /opt/yuqing/app
USER 10001:10001
EXPOSE 8001 8003 9102 9103 9104
# No HEALTHCHECK: each service has its own port and endpoint; the orchestrator probes them
# (/healthz on 8001 and 8003, /metrics on 9102-9104).
ENTRYPOINT ["yuqing"]
CMD ["--help"]
