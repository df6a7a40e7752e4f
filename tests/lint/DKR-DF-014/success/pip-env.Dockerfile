FROM python:3.12
ENV PIP_NO_CACHE_DIR=1
RUN pip install requests
