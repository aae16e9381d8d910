#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return shepherd::cli::run(argc, argv);
}
