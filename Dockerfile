# One image for all four functions; FUNCTION_TARGET picks one at run time:
#   interaction_verify | command_route | workflow_submit | status_callback
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Dependencies first, so code changes do not reinstall them.
COPY requirements.txt pyproject.toml ./
COPY lib ./lib
RUN pip install -r requirements.txt
COPY functions ./functions
COPY config ./config
COPY schemas ./schemas
# Bytecode built once, here: PYTHONDONTWRITEBYTECODE stops Python writing it at run time, and
# the editable install leaves lib/ uncompiled, so each cold start would compile facteur again.
RUN python -m compileall -q lib functions

# Four threads for the CloudEvent functions (gunicorn's threaded worker). The two HTTP functions
# set FUNCTION_USE_ASGI=true in their Services and are served by uvicorn instead.
ENV PORT=8080 \
    THREADS=4 \
    FUNCTION_TARGET=interaction_verify
USER 65532:65532
EXPOSE 8080
# The source file follows from the target; functions-framework reads both from the environment.
CMD ["sh", "-c", "exec functions-framework --target \"$FUNCTION_TARGET\" --source \"functions/$FUNCTION_TARGET/main.py\""]
