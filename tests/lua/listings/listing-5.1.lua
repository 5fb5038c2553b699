-- The seed's Listing 5.1 (average age of adults), as printed but for:
--   * `local Rx = require 'rx'` and a `people` table (the listing is a
--     fragment that assumes both);
--   * accumulator[count] / accumulator[sum] -> accumulator.count / .sum
--     (the globals count and sum are nil: indexing with nil fails);
--   * reduce gets the seed {} (without one, RxLua's reduce uses the first
--     age, a number, as the accumulator) and returns the accumulator.
local Rx = require 'rx'
local people = {
  { name = 'Ann', age = 34 }, { name = 'Bob', age = 12 },
  { name = 'Cyd', age = 51 }, { name = 'Dan', age = 17 },
  { name = 'Eve', age = 27 },
}

Rx.Observable.fromTable(people)
  :map(
    function(person)
      return person.age
    end
  )
  :filter(
    function(age)
      return age > 18
    end
  )
  :reduce(
    function(accumulator, age)
      accumulator.count = (accumulator.count
        or 0) + 1
      accumulator.sum = (accumulator.sum
        or 0) + age
      return accumulator
    end, {}
  )
  :subscribe(
    function(datas)
      print("Adult_people_average:",
        datas.sum / datas.count)
    end,
    function(err)
      print(err)
    end,
    function()
      print("Process_complete!")
    end
  )
