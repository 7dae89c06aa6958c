#include "util.h"

int main(void)
{
	return util_answer() == 42 ? 0 : 1;
}
