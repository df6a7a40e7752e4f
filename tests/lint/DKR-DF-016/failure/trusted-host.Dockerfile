# expect: 4, 5
FROM python:3.12
RUN pip install --no-cache-dir \
    --trusted-host pypi.example.com requests
ENV PIP_TRUSTED_HOST=pypi.example.com
