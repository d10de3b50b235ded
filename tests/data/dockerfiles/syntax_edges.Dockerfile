#directive=value
# check=skip=all
  from   alpine:3.19   as   Builder   
run --mount=type=cache,target=/root/.cache,id=pip \
    --mount=type=secret,id=token,required=true \
    --network=none \
    pip install -r requirements.txt
RUN a \

    b \
  # comment inside a continuation
    c
RUN --mount=type=bind,from=builder,source=/out,target=/in ["ls", "-l", "/in"]
COPY --from=builder --chown=app:app --chmod=0755 /out/bin /usr/local/bin/
COPY --link --parents a/b c/d /dst/
COPY ["with space", "/dst dir/"]
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a.tar /a
ADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit
CMD [ "not json"
CMD []
ENTRYPOINT ["a", "b"]
RUN -- --not-a-flag
ONBUILD COPY --from=builder /x /y
HEALTHCHECK --interval=1m30s --timeout=10s --start-period=5s --start-interval=1s --retries=5 CMD ["curl", "-f", "http://localhost/"]
HEALTHCHECK NONE
EXPOSE 8080 9000-9010/udp
ENV A=1 B="two words" C='single $quoted' D=\$literal
LABEL "quoted key"=v
ARG X Y=2 Z="q r"
WORKDIR /a b
MAINTAINER Jane Doe <jane@example.com>
