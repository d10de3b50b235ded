# Examples from the Dockerfile reference (moby/buildkit frontend/dockerfile/docs/reference.md),
# sections "Format", "Environment replacement", "Shell form", "FROM", "ENV", "LABEL".
ARG  CODE_VERSION=latest
FROM base:${CODE_VERSION}
CMD  /code/run-app
# Comment
RUN echo 'we are running some # of cool things'
RUN echo hello \
# comment
world
        # this is a comment-line
    RUN echo hello
RUN echo world
RUN echo "\
     hello\
     world"
RUN source $HOME/.bashrc && \
echo $HOME
ENTRYPOINT ["/bin/bash", "-c", "echo hello"]
RUN ["c:\windows\system32\tasklist.exe"]
RUN ["c:\\windows\\system32\\tasklist.exe"]
ENV FOO=/bar
WORKDIR ${FOO}
ADD . $FOO
COPY \$FOO /quux
ENV abc=hello
ENV abc=bye def=$abc
ENV ghi=$abc
ENV MY_NAME="John Doe"
ENV MY_DOG=Rex\ The\ Dog
ENV MY_CAT=fluffy
ENV MY_NAME="John Doe" MY_DOG=Rex\ The\ Dog \
    MY_CAT=fluffy
ENV MY_VAR my-value
LABEL "com.example.vendor"="ACME Incorporated"
LABEL com.example.label-with-value="foo"
LABEL version="1.0"
LABEL description="This text illustrates \
that label-values can span multiple lines."
LABEL multi.label1="value1" multi.label2="value2" other="value3"
LABEL multi.label1="value1" \
      multi.label2="value2" \
      other="value3"
EXPOSE 80/udp
EXPOSE 80/tcp
HEALTHCHECK --interval=5m --timeout=3s \
  CMD curl -f http://localhost/ || exit 1
SHELL ["/bin/bash", "-c"]
ONBUILD ADD . /app/src
ONBUILD RUN /usr/local/bin/python-build --dir /app/src
STOPSIGNAL SIGKILL
USER patrick
VOLUME ["/data"]
VOLUME /var/log /var/db
ARG user1=someuser
ARG buildno=1

FROM extras:${CODE_VERSION}
CMD  /code/run-extras
