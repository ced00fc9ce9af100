// Real child processes for multi-process and crash tests: fork/exec with stdout on a pipe.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace factstr::testing {

class ChildProcess {
  public:
    explicit ChildProcess(const std::vector<std::string>& args) {
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            ::dup2(fds[1], STDOUT_FILENO);
            ::close(fds[0]);
            ::close(fds[1]);
            std::vector<char*> argv;
            for (const auto& a : args)
                argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out_ = ::fdopen(fds[0], "r");
    }
    ChildProcess(const ChildProcess&) = delete;
    ~ChildProcess() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (out_) ::fclose(out_);
    }

    // One line of the child's stdout without the newline; false at end of output.
    bool read_line(std::string& line) {
        line.clear();
        int c;
        while ((c = std::fgetc(out_)) != EOF) {
            if (c == '\n') return true;
            line.push_back(static_cast<char>(c));
        }
        return !line.empty();
    }
    std::vector<std::string> read_lines() {
        std::vector<std::string> lines;
        std::string line;
        while (read_line(line))
            lines.push_back(line);
        return lines;
    }
    void kill(int signal) { ::kill(pid_, signal); }
    // The exit status (exit code, or 128 + signal).
    int wait() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        reaped_ = true;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        return 128 + WTERMSIG(status);
    }
    pid_t pid() const { return pid_; }

  private:
    pid_t pid_ = -1;
    bool reaped_ = false;
    FILE* out_ = nullptr;
};

}  // namespace factstr::testing
